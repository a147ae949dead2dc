// SPDX-License-Identifier: Apache-2.0
#pragma once

// Unpadded base64url (RFC 4648 §5), the text form of query cursors and change-feed
// resume points: both travel in JSON, URLs and headers.

#include <optional>
#include <string>
#include <string_view>

namespace shoal::util {

/// The unpadded base64url text of `bytes`.
std::string base64url_encode(std::string_view bytes);

/// The bytes of canonical unpadded base64url `text`: only the alphabet, no impossible
/// length, and zero bits after the last byte, so every byte string has exactly one text.
/// nullopt for anything else.
std::optional<std::string> base64url_decode(std::string_view text);

} // namespace shoal::util
