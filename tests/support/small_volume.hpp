// SPDX-License-Identifier: Apache-2.0
#pragma once

// A small tmpfs mounted on a fresh directory, for tests of a full disk: it fills up after
// a known number of bytes, and can be grown ("space freed") or filled to the last byte.
// Mounting needs root (CAP_SYS_ADMIN), which CI has; elsewhere `mounted()` is false and
// the test skips. Header-only (the storage tests use it without the support library).

#include <sys/mount.h>
#include <sys/statvfs.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace shoal::test {

class small_volume {
public:
  /// Mounts a tmpfs of `kib` KiB on a new directory under the temp directory.
  explicit small_volume(std::uint64_t kib) {
    auto pattern = (std::filesystem::temp_directory_path() / "shoal-volume-XXXXXX").string();
    std::vector<char> buf(pattern.begin(), pattern.end());
    buf.push_back('\0');
    if (::mkdtemp(buf.data()) == nullptr) {
      error_ = std::strerror(errno);
      return;
    }
    path_ = buf.data();
    const auto data = "size=" + std::to_string(kib) + "k,mode=0700";
    if (::mount("tmpfs", path_.c_str(), "tmpfs", 0, data.c_str()) != 0) {
      error_ = std::string("mount tmpfs: ") + std::strerror(errno);
      return;
    }
    mounted_ = true;
  }

  ~small_volume() {
    if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }

  small_volume(const small_volume&) = delete;
  small_volume& operator=(const small_volume&) = delete;

  bool mounted() const noexcept {
    return mounted_;
  }
  const std::string& error() const noexcept {
    return error_;
  }
  const std::filesystem::path& path() const noexcept {
    return path_;
  }

  /// Changes the size (growing it frees space; files stay). False on failure.
  bool resize(std::uint64_t kib) {
    const auto data = "size=" + std::to_string(kib) + "k";
    return ::mount("tmpfs", path_.c_str(), "tmpfs", MS_REMOUNT, data.c_str()) == 0;
  }

  /// Bytes free now.
  std::uint64_t free_bytes() const {
    struct statvfs s {};
    if (::statvfs(path_.c_str(), &s) != 0) return 0;
    return static_cast<std::uint64_t>(s.f_bavail) * s.f_frsize;
  }

  /// Bytes used now.
  std::uint64_t used_bytes() const {
    struct statvfs s {};
    if (::statvfs(path_.c_str(), &s) != 0) return 0;
    return static_cast<std::uint64_t>(s.f_blocks - s.f_bfree) * s.f_frsize;
  }

  /// Fills the free space with a padding file, to the last byte.
  void fill() {
    std::ofstream pad(path_ / "padding", std::ios::binary | std::ios::app);
    std::vector<char> block(64 * 1024, 0);
    while (pad.write(block.data(), static_cast<std::streamsize>(block.size())) && pad.flush()) {
    }
    pad.clear();
    std::vector<char> byte(1, 0);
    while (pad.write(byte.data(), 1) && pad.flush()) {
    }
  }

private:
  std::filesystem::path path_;
  std::string error_;
  bool mounted_ = false;
};

} // namespace shoal::test
