// SLABPOOL_* options: parsing, warnings for bad values and unknown names, the API.
#include <gtest/gtest.h>
#include <slabpool/slabpool.h>

#include <cerrno>
#include <cstdio>
#include <string>

#include "runtime/options.hpp"

namespace {

struct probe_output {
  std::string text;  // stdout and stderr together
  long long value(sp_option which) const {
    // Lines are "index=value"; match at a line start so "1=" does not match inside "11=".
    std::string key = std::to_string(static_cast<int>(which));
    key += '=';
    for (std::size_t at = 0; at < text.size(); at = text.find('\n', at) + 1) {
      if (text.compare(at, key.size(), key) == 0) return std::stoll(text.substr(at + key.size()));
      if (text.find('\n', at) == std::string::npos) break;
    }
    return -12345;
  }
};

probe_output run_probe(const std::string& environment) {
  std::string command = "env -i ";
  command += environment;
  command += " " OPTIONS_PROBE " 2>&1";
  probe_output out;
  std::FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return out;
  char buffer[512];
  while (std::fgets(buffer, sizeof(buffer), pipe) != nullptr) out.text += buffer;
  pclose(pipe);
  return out;
}

TEST(options, defaults_without_environment) {
  const probe_output out = run_probe("");
  EXPECT_EQ(out.value(SP_OPTION_TRIM_DELAY_MS), 500);
  EXPECT_EQ(out.value(SP_OPTION_TRIM_INTERVAL_MS), 100);
  EXPECT_EQ(out.value(SP_OPTION_BACKGROUND_TRIM), 1);
  EXPECT_EQ(out.value(SP_OPTION_MEMORY_LIMIT), 0);
  EXPECT_EQ(out.text.find("warning"), std::string::npos) << out.text;
}

TEST(options, environment_values_are_read) {
  const probe_output out = run_probe(
      "SLABPOOL_TRIM_DELAY_MS=250 SLABPOOL_TRIM_INTERVAL_MS=50 SLABPOOL_BACKGROUND_TRIM=0 "
      "SLABPOOL_MEMORY_LIMIT=512M SLABPOOL_THREAD_CACHE=64k SLABPOOL_CACHE=1G");
  EXPECT_EQ(out.value(SP_OPTION_TRIM_DELAY_MS), 250);
  EXPECT_EQ(out.value(SP_OPTION_TRIM_INTERVAL_MS), 50);
  EXPECT_EQ(out.value(SP_OPTION_BACKGROUND_TRIM), 0);
  EXPECT_EQ(out.value(SP_OPTION_MEMORY_LIMIT), 512LL << 20);
  EXPECT_EQ(out.value(SP_OPTION_THREAD_CACHE_BYTES), 64LL << 10);
  EXPECT_EQ(out.value(SP_OPTION_CACHE_BYTES), 1LL << 30);
}

TEST(options, malformed_value_warns_naming_it_and_keeps_the_default) {
  for (const char* bad : {"SLABPOOL_TRIM_DELAY_MS=soon", "SLABPOOL_TRIM_DELAY_MS=-5",
                          "SLABPOOL_TRIM_DELAY_MS=99999999999", "SLABPOOL_TRIM_DELAY_MS=12ms"}) {
    const probe_output out = run_probe(bad);
    EXPECT_EQ(out.value(SP_OPTION_TRIM_DELAY_MS), 500) << bad;
    EXPECT_NE(out.text.find(std::string("warning: ") + bad), std::string::npos) << out.text;
    EXPECT_NE(out.text.find("expected milliseconds"), std::string::npos) << out.text;
  }
  const probe_output limit = run_probe("SLABPOOL_MEMORY_LIMIT=12X");
  EXPECT_EQ(limit.value(SP_OPTION_MEMORY_LIMIT), 0);
  EXPECT_NE(limit.text.find("k/M/G suffix"), std::string::npos) << limit.text;
  const probe_output flag = run_probe("SLABPOOL_BACKGROUND_TRIM=yes");
  EXPECT_EQ(flag.value(SP_OPTION_BACKGROUND_TRIM), 1);
  EXPECT_NE(flag.text.find("expected 0 or 1"), std::string::npos) << flag.text;
}

TEST(options, unknown_name_warns_once) {
  const probe_output out = run_probe("SLABPOOL_TRIM_DELAY=5");
  EXPECT_NE(out.text.find("warning: SLABPOOL_TRIM_DELAY: unknown option"), std::string::npos)
      << out.text;
  EXPECT_EQ(out.text.find("warning", out.text.find("warning") + 1), std::string::npos);
}

TEST(options, size_suffixes) {
  std::int64_t v = 0;
  using slabpool::detail::parse_option_value;
  ASSERT_TRUE(parse_option_value(SP_OPTION_MEMORY_LIMIT, "64M", &v));
  EXPECT_EQ(v, 64LL << 20);
  ASSERT_TRUE(parse_option_value(SP_OPTION_MEMORY_LIMIT, "3GiB", &v));
  EXPECT_EQ(v, 3LL << 30);
  ASSERT_TRUE(parse_option_value(SP_OPTION_MEMORY_LIMIT, "12kB", &v));
  EXPECT_EQ(v, 12LL << 10);
  ASSERT_TRUE(parse_option_value(SP_OPTION_MEMORY_LIMIT, "4096", &v));
  EXPECT_EQ(v, 4096);
  for (const char* bad : {"", "M", "1T", "1.5G", " 5", "5 ", "-1", "99999999999999999999"}) {
    EXPECT_FALSE(parse_option_value(SP_OPTION_MEMORY_LIMIT, bad, &v)) << '"' << bad << '"';
  }
  EXPECT_FALSE(parse_option_value(SP_OPTION_TRIM_DELAY_MS, "5k", &v)) << "not a size option";
}

TEST(options, api_set_and_get) {
  EXPECT_EQ(sp_option_set(SP_OPTION_TRIM_DELAY_MS, 42), 0);
  EXPECT_EQ(sp_option_get(SP_OPTION_TRIM_DELAY_MS), 42);
  EXPECT_EQ(sp_option_set(SP_OPTION_TRIM_DELAY_MS, -1), EINVAL);
  EXPECT_EQ(sp_option_set(SP_OPTION_TRIM_INTERVAL_MS, 1), EINVAL) << "below the 10 ms floor";
  EXPECT_EQ(sp_option_set(SP_OPTION_BACKGROUND_TRIM, 2), EINVAL);
  EXPECT_EQ(sp_option_get(SP_OPTION_TRIM_DELAY_MS), 42) << "a rejected value changes nothing";
  EXPECT_EQ(sp_option_set(99, 1), EINVAL);
  EXPECT_EQ(sp_option_get(99), -1);
}

}  // namespace
