"""PNG plots for the bench report (matplotlib, Agg backend: no display needed)."""

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def throughput_bars(panels, path,
                    heading="Throughput: median of the runs, whiskers = min-max (higher is better)"):
    """panels: list of (title, unit, [(label, median, min, max)]). Bars show medians, whiskers the
    min-max range over the runs."""
    if not panels:
        return False
    cols = 3
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.6 * rows), squeeze=False)
    for ax, (title, unit, bars) in zip(axes.flat, panels):
        labels = [b[0] for b in bars]
        med = [b[1] for b in bars]
        err = [[b[1] - b[2] for b in bars], [b[3] - b[1] for b in bars]]
        ax.bar(labels, med, yerr=err, capsize=4, color="#4c72b0")
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(unit, fontsize=9)
        ax.tick_params(axis="x", rotation=30, labelsize=8)
        ax.grid(axis="y", alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(heading)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def instructions_vs_size(series_by_pattern, titles, path, heading):
    """series_by_pattern: {pattern: {label: [(size, instr)]}}."""
    patterns = [p for p in titles if p in series_by_pattern]
    if not patterns:
        return False
    fig, axes = plt.subplots(1, len(patterns), figsize=(5.5 * len(patterns), 4.2), squeeze=False)
    for ax, pattern in zip(axes.flat, patterns):
        for label, points in sorted(series_by_pattern[pattern].items()):
            points = sorted(points)
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("block size (bytes)")
        ax.set_ylabel("instructions per pair")
        ax.set_title(titles[pattern], fontsize=9)
        ax.grid(alpha=0.3, which="both")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(heading + " (lower is better)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def rss_timeline(csv_by_label, path, title):
    """All allocators' RSS timelines of the burst-then-idle workload on one chart."""
    if not csv_by_label:
        return False
    fig, ax = plt.subplots(figsize=(11, 4.8))
    boundaries = None
    for label, csv_path in csv_by_label.items():
        t, rss, phases = [], [], []
        with open(csv_path) as f:
            for row in csv.DictReader(f):
                t.append(float(row["t_s"]))
                rss.append(float(row["rss_mib"]))
                phases.append(row["phase"])
        ax.plot(t, rss, label=label, linewidth=1.4)
        if boundaries is None:  # phase starts of the first allocator, as a guide
            boundaries = [(t[i], phases[i]) for i in range(len(t))
                          if i == 0 or phases[i] != phases[i - 1]]
    for x, phase in boundaries or []:
        if phase.startswith("alloc"):
            ax.axvline(x, color="grey", alpha=0.3, linestyle="--")
            ax.text(x, ax.get_ylim()[1] * 0.97, " " + phase.split(":")[1] + " B", fontsize=7,
                    va="top", color="grey")
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("resident memory (MiB)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def existing(paths):
    return [p for p in paths if Path(p).exists()]
