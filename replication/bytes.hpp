// SPDX-License-Identifier: Apache-2.0
#pragma once

// Big-endian numbers and sized byte strings (4-byte length, then the bytes): how the
// replication log and wire lay out their fields. Internal to replication/.

#include <cstdint>
#include <string>
#include <string_view>

namespace shoal::replication::bytes {

inline void put_be(std::string& out, std::uint64_t v, int width) {
  for (int i = width - 1; i >= 0; --i) {
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
}

inline void put_sized(std::string& out, std::string_view b) {
  put_be(out, b.size(), 4);
  out.append(b);
}

/// Reads what put_be and put_sized wrote; a read past the end fails and moves nothing.
class reader {
public:
  explicit reader(std::string_view in) : in_(in) {}

  bool be(std::uint64_t& v, int width) {
    if (in_.size() < static_cast<std::size_t>(width)) return false;
    v = 0;
    for (int i = 0; i < width; ++i) {
      v = (v << 8) | static_cast<unsigned char>(in_[static_cast<std::size_t>(i)]);
    }
    in_.remove_prefix(static_cast<std::size_t>(width));
    return true;
  }
  /// be() into any integer (or enum) type.
  template <class T>
  bool num(T& out, int width) {
    std::uint64_t v = 0;
    if (!be(v, width)) return false;
    out = static_cast<T>(v);
    return true;
  }
  /// A view of the next sized string, valid as long as the input.
  bool sized(std::string_view& out) {
    std::uint64_t n = 0;
    std::string_view before = in_;
    if (!be(n, 4) || n > in_.size()) {
      in_ = before;
      return false;
    }
    out = in_.substr(0, n);
    in_.remove_prefix(n);
    return true;
  }
  bool sized(std::string& out) {
    std::string_view v;
    if (!sized(v)) return false;
    out.assign(v);
    return true;
  }
  std::string_view rest() const noexcept {
    return in_;
  }
  bool done() const noexcept {
    return in_.empty();
  }

private:
  std::string_view in_;
};

} // namespace shoal::replication::bytes
