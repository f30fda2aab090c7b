# A Python workload for the preload tests: dict, list, str and JSON churn with a deterministic
# result, so a run under the shim can be compared byte for byte with one on glibc.
import hashlib
import json
import random

rng = random.Random(20240601)
digest = hashlib.sha256()

table = {}
for round_ in range(25):
    for i in range(3000):
        key = "k%d_%d" % (rng.randrange(20000), round_ % 7)
        value = {"id": i, "name": "x" * rng.randrange(1, 120),
                 "tags": [rng.random() for _ in range(rng.randrange(8))]}
        table[key] = value
    if len(table) > 8000:  # drop a random half: frees spread over the whole heap
        for key in rng.sample(sorted(table), len(table) // 2):
            del table[key]
    text = json.dumps(table, sort_keys=True)
    decoded = json.loads(text)
    digest.update(text[: 1 << 16].encode())
    words = " ".join(sorted(decoded)[:2000]).split(" ")
    digest.update(("|".join(w.upper() for w in words)).encode())

lists = [[str(j) * (j % 13) for j in range(i % 300)] for i in range(2000)]
digest.update(str(sum(len("".join(row)) for row in lists)).encode())
print(len(table), digest.hexdigest())
