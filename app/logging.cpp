// SPDX-License-Identifier: Apache-2.0
#include "app/logging.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/string_view.hpp>
#include <boost/json/value.hpp>
#include <spdlog/async_logger.h>
#include <spdlog/details/thread_pool.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace shoal::app {

namespace {

/// `%*`: the message as a JSON string literal (quoted and escaped by Boost.JSON).
class json_message_flag final : public spdlog::custom_flag_formatter {
public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    auto text = boost::json::serialize(
      boost::json::value(boost::json::string_view(msg.payload.data(), msg.payload.size())));
    dest.append(text.data(), text.data() + text.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<json_message_flag>();
  }
};

/// `%w`: the level by the names log.level takes ("warn", where spdlog says "warning").
class level_flag final : public spdlog::custom_flag_formatter {
public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    const std::string_view name = level_name(msg.level);
    if (padinfo_.enabled()) {
      // As %-5l pads: to the width, on the right.
      dest.append(name.data(), name.data() + name.size());
      for (auto n = name.size(); n < padinfo_.width_; ++n)
        dest.push_back(' ');
      return;
    }
    dest.append(name.data(), name.data() + name.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<level_flag>();
  }

  static std::string_view level_name(spdlog::level::level_enum l) {
    switch (l) {
    case spdlog::level::trace:
      return "trace";
    case spdlog::level::debug:
      return "debug";
    case spdlog::level::info:
      return "info";
    case spdlog::level::warn:
      return "warn";
    case spdlog::level::err:
      return "error";
    case spdlog::level::critical:
      return "critical";
    default:
      return "off";
    }
  }
};

constexpr const char* json_head = R"({"ts":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%w","logger":"%n",)";

std::unique_ptr<spdlog::formatter> make_formatter(bool json, bool fields) {
  auto f = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
  f->add_flag<level_flag>('w');
  if (!json) {
    f->set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %-5w [%n] %v");
  } else if (fields) {
    // The access logger's message is already a list of JSON members.
    f->set_pattern(std::string(json_head) + "%v}");
  } else {
    f->add_flag<json_message_flag>('*').set_pattern(std::string(json_head) + R"("msg":%*})");
  }
  return f;
}

} // namespace

loggers make_loggers(const config::log_settings& settings) {
  bool json = settings.format == "json";
  auto level = spdlog::level::from_str(settings.level);
  auto sink = std::make_shared<spdlog::sinks::stdout_sink_mt>();
  auto make = [&](const char* name) {
    auto log = std::make_shared<spdlog::logger>(name, sink);
    log->set_formatter(make_formatter(json, false));
    log->set_level(level);
    log->flush_on(spdlog::level::trace);
    return log;
  };
  loggers out;
  out.main = make("shoal");
  out.http = make("http");
  out.storage = make("storage");
  out.cluster = make("cluster");
  if (settings.access_log) {
    out.access_pool = std::make_shared<spdlog::details::thread_pool>(8192, 1);
    auto access_sink = std::make_shared<spdlog::sinks::stdout_sink_mt>();
    access_sink->set_formatter(make_formatter(json, true));
    auto access = std::make_shared<spdlog::async_logger>(
      "access", access_sink, out.access_pool, spdlog::async_overflow_policy::overrun_oldest);
    access->set_level(level);
    out.access = std::move(access);
  }
  return out;
}

} // namespace shoal::app
