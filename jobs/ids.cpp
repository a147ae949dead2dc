// SPDX-License-Identifier: Apache-2.0
#include "jobs/ids.hpp"

#include <cstdio>

namespace shoal::jobs {

std::string make_job_id(std::uint32_t shard, std::uint64_t sequence) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%05x%016llx", static_cast<unsigned>(shard & 0xfffffu),
                static_cast<unsigned long long>(sequence));
  return buf;
}

std::optional<std::uint32_t> job_shard(std::string_view id) noexcept {
  if (id.size() != job_id_length) return std::nullopt;
  std::uint32_t shard = 0;
  for (std::size_t i = 0; i < id.size(); ++i) {
    char c = id[i];
    unsigned digit = 0;
    if (c >= '0' && c <= '9')
      digit = static_cast<unsigned>(c - '0');
    else if (c >= 'a' && c <= 'f')
      digit = static_cast<unsigned>(c - 'a' + 10);
    else
      return std::nullopt;
    if (i < 5) shard = shard * 16 + digit;
  }
  return shard;
}

} // namespace shoal::jobs
