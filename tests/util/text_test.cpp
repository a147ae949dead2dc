// SPDX-License-Identifier: Apache-2.0
// util/text.hpp: trimming and comma lists, as the config, auth and CORS read them.
#include "util/text.hpp"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace shoal::util {
namespace {

std::vector<std::string> items(std::string_view list) {
  std::vector<std::string> out;
  for_each_item(list, ',', [&](std::string_view item) {
    out.emplace_back(item);
    return true;
  });
  return out;
}

TEST(TextTest, TrimRemovesSpacesAndTabsOnly) {
  static_assert(trim(" \ta b\t ") == "a b");
  EXPECT_EQ(trim(""), "");
  EXPECT_EQ(trim(" \t "), "");
  EXPECT_EQ(trim("x\r"), "x\r") << "a CR is not whitespace here";
}

TEST(TextTest, ListItemsAreTrimmedAndEmptyOnesKept) {
  EXPECT_EQ(items("a, b ,\tc"), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(items("a,,b,"), (std::vector<std::string>{"a", "", "b", ""}));
  EXPECT_EQ(items(""), (std::vector<std::string>{""}));
  std::vector<std::string> seen;
  for_each_item("a,stop,c", ',', [&](std::string_view item) {
    seen.emplace_back(item);
    return item != "stop";
  });
  EXPECT_EQ(seen, (std::vector<std::string>{"a", "stop"})) << "false ends the walk";
}

} // namespace
} // namespace shoal::util
