// A template-heavy translation unit for the preload tests: g++ (cc1plus) compiles it under the
// shim and on glibc, and the generated assembly must be identical.
#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <unordered_map>
#include <variant>
#include <vector>

template <int N>
struct fib {
  static constexpr long value = fib<N - 1>::value + fib<N - 2>::value;
};
template <>
struct fib<0> {
  static constexpr long value = 0;
};
template <>
struct fib<1> {
  static constexpr long value = 1;
};

template <typename... Ts>
struct overloaded : Ts... {
  using Ts::operator()...;
};
template <typename... Ts>
overloaded(Ts...) -> overloaded<Ts...>;

using value = std::variant<int, double, std::string, std::vector<int>, std::map<std::string, int>>;

template <typename T, std::size_t... I>
auto tuple_sum(const T& t, std::index_sequence<I...>) {
  return (0.0 + ... + static_cast<double>(std::get<I>(t)));
}

template <typename K, typename V>
std::string describe(const std::map<K, std::vector<V>>& m) {
  std::ostringstream out;
  for (const auto& [k, vs] : m) {
    out << k << ':' << std::accumulate(vs.begin(), vs.end(), V{}) << ';';
  }
  return out.str();
}

std::string visit_all(const std::vector<value>& values) {
  std::string out;
  for (const auto& v : values) {
    out += std::visit(
        overloaded{[](int i) { return std::to_string(i); },
                   [](double d) { return std::to_string(d); },
                   [](const std::string& s) { return s; },
                   [](const std::vector<int>& v) { return std::to_string(v.size()); },
                   [](const std::map<std::string, int>& m) { return std::to_string(m.size()); }},
        v);
  }
  return out;
}

int main() {
  std::map<std::string, std::vector<double>> m{{"a", {1, 2}}, {"b", {3}}};
  std::map<int, std::vector<long>> n{{1, {fib<40>::value}}};
  std::vector<value> values{1, 2.5, std::string("s"), std::vector<int>{1, 2}};
  std::unordered_map<std::string, std::set<std::tuple<int, double, std::string>>> u;
  u["x"].insert({1, 2.0, "y"});
  auto t = std::make_tuple(1, 2.0f, 3L, 4u);
  std::function<int(int)> f = [](int x) { return x * 2; };
  std::optional<std::shared_ptr<std::vector<value>>> o =
      std::make_shared<std::vector<value>>(values);
  return static_cast<int>(describe(m).size() + describe(n).size() + visit_all(**o).size() +
                          u.size() + tuple_sum(t, std::make_index_sequence<4>{}) + f(1));
}
