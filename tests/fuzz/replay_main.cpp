// main() for builds without libFuzzer: runs LLVMFuzzerTestOneInput over every file of the given
// files or directories (the seed corpus and the regression inputs), then over `--random N`
// programs drawn from a fixed seed, so ctest checks the same properties the fuzzer does.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "common/pattern.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

std::size_t run_file(const std::filesystem::path& path) {
  std::ifstream file(path, std::ios::binary);
  const std::vector<char> bytes((std::istreambuf_iterator<char>(file)),
                                std::istreambuf_iterator<char>());
  LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  return 1;
}

std::size_t run_path(const std::filesystem::path& path) {
  if (!std::filesystem::is_directory(path)) return run_file(path);
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(path)) {
    // README and other dot-free notes are inputs too, harmlessly; only hidden files are skipped.
    if (entry.is_regular_file() && entry.path().filename().string()[0] != '.') {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());  // a stable order makes a failure reproducible
  for (const auto& file : files) {
    std::fprintf(stderr, "replay: %s\n", file.c_str());
    run_file(file);
  }
  return files.size();
}

// Random programs of random bytes, from a fixed seed so a failure replays (the target aborts with
// its message on the first wrong result).
std::size_t run_random(std::size_t count, std::uint64_t seed) {
  sp_check::rng r(seed);
  std::vector<std::uint8_t> input;
  for (std::size_t i = 0; i < count; ++i) {
    input.resize(r.range(1, 512));
    for (auto& byte : input) byte = static_cast<std::uint8_t>(r.next());
    LLVMFuzzerTestOneInput(input.data(), input.size());
  }
  return count;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t files = 0;
  std::size_t random = 0;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--random") == 0 && i + 1 < argc) {
      random += run_random(std::strtoull(argv[i + 1], nullptr, 10), 0x5eed + i);
      ++i;
    } else if (!std::filesystem::exists(argv[i])) {
      std::fprintf(stderr, "replay: no such file or directory: %s\n", argv[i]);
      return 2;
    } else {
      files += run_path(argv[i]);
    }
  }
  std::printf("replay: %zu files and %zu random programs passed\n", files, random);
  return files + random > 0 ? 0 : 2;  // an empty corpus must not pass silently
}
