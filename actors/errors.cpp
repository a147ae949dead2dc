// SPDX-License-Identifier: Apache-2.0
#include "actors/errors.hpp"

namespace shoal::actors {

std::string to_string(errc x) {
  switch (x) {
  case errc::storage_failed:
    return "storage_failed";
  }
  return "unknown";
}

} // namespace shoal::actors
