// SPDX-License-Identifier: Apache-2.0
// Asio and Beast are compiled once, here (BOOST_ASIO_SEPARATE_COMPILATION and
// BOOST_BEAST_SEPARATE_COMPILATION are set for every user of shoal_http).
#include <boost/asio/impl/src.hpp>
#include <boost/beast/src.hpp>
