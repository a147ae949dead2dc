// SPDX-License-Identifier: Apache-2.0
#pragma once

// A compile-time list of types, and what the project does with such lists: join them,
// ask whether one holds a type, call a function once per type.

#include <cstddef>
#include <type_traits>

namespace shoal::core {

template <class... Ts>
struct type_list {
  static constexpr std::size_t size = sizeof...(Ts);
};

template <class... Lists>
struct concat;
template <>
struct concat<> {
  using type = type_list<>;
};
template <class... Ts>
struct concat<type_list<Ts...>> {
  using type = type_list<Ts...>;
};
template <class... As, class... Bs, class... Rest>
struct concat<type_list<As...>, type_list<Bs...>, Rest...> {
  using type = typename concat<type_list<As..., Bs...>, Rest...>::type;
};
template <class... Lists>
using concat_t = typename concat<Lists...>::type;

template <class List, class T>
struct contains;
template <class... Ts, class T>
struct contains<type_list<Ts...>, T> : std::bool_constant<(std::is_same_v<Ts, T> || ...)> {};
template <class List, class T>
inline constexpr bool contains_v = contains<List, T>::value;

/// Calls `f(type_tag<T>{})` for each T of `List`, in order.
template <class T>
struct type_tag {
  using type = T;
};
template <class... Ts, class F>
void for_each_type(type_list<Ts...>, F&& f) {
  (f(type_tag<Ts>{}), ...);
}

} // namespace shoal::core
