// SPDX-License-Identifier: Apache-2.0
#pragma once

// The shoal binary as a child process, for end-to-end tests. Every wait is bounded; a
// child still running when its owner dies is killed, so a failing test leaks nothing.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <sys/types.h>

namespace shoal::test {

using namespace std::chrono_literals;

/// Path of the shoal binary under test: the SHOAL_BINARY environment variable when set
/// (to run the suites against another build), else the SHOAL_BINARY compile definition.
std::string shoal_binary();

/// How to start a child.
struct process_options {
  std::vector<std::string> args;       ///< argv[1..]; argv[0] is the binary
  std::filesystem::path log_file;      ///< stdout (truncated); stderr too unless below
  std::filesystem::path stderr_file;   ///< when not empty, stderr goes here instead
  std::string binary = shoal_binary(); ///< what to execute
  std::vector<std::string> env;        ///< "NAME=value", ahead of the inherited environment
};

/// A running (or finished) child process started with fork/exec.
class shoal_process {
public:
  /// Forks and execs `opts.binary`; stdin is /dev/null. Does not wait for anything.
  /// Throws std::system_error when the log cannot be opened or fork fails.
  explicit shoal_process(process_options opts);

  /// Kills the child with SIGKILL and reaps it when it is still running.
  ~shoal_process();

  shoal_process(const shoal_process&) = delete;
  shoal_process& operator=(const shoal_process&) = delete;

  /// Polls the log every 10 ms for `listening on http://HOST:PORT` and returns PORT.
  /// Nullopt when the child exits first or `timeout` passes (the child keeps running).
  std::optional<std::uint16_t> wait_listening(std::chrono::milliseconds timeout = 15s);

  /// The port found by `wait_listening`, 0 before.
  std::uint16_t port() const noexcept {
    return port_;
  }

  pid_t pid() const noexcept {
    return pid_;
  }

  /// True until the child has been reaped (it may be a zombie until then).
  bool running();

  /// Sends `signal` and waits up to `timeout` for the exit. Returns the exit status:
  /// the exit code, or 128 + N when signal N ended it. On timeout the child is killed
  /// with SIGKILL, a gtest failure is recorded and -1 returned.
  int stop(int signal, std::chrono::milliseconds timeout = 15s);

  /// Waits up to `timeout` for the child to exit on its own; returns as `stop` does.
  int wait_exit(std::chrono::milliseconds timeout = 15s);

  /// SIGKILL and reap: the crash of a machine as far as the process can tell.
  void kill9();

  /// The exit status once reaped (see `stop`), nullopt while running.
  std::optional<int> exit_status() const noexcept {
    return status_;
  }

  /// Everything the child wrote to its log so far.
  std::string log() const;

  /// Everything the child wrote to stderr (the log when stderr was not separated).
  std::string stderr_text() const;

  const std::filesystem::path& log_file() const noexcept {
    return opts_.log_file;
  }

private:
  bool reap(bool block);

  process_options opts_;
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
  std::optional<int> status_;
};

/// `serve --set http.port=0 --set storage.path=<data_dir>` followed by `--set S` for each
/// S in `sets` ("http.max_body_bytes=1024").
std::vector<std::string> serve_args(const std::filesystem::path& data_dir,
                                    const std::vector<std::string>& sets = {});

/// Starts a node with `serve_args(data_dir, sets)`, logging to `log_file`, and waits for
/// it to listen. Throws std::runtime_error carrying the log when it does not come up.
std::unique_ptr<shoal_process> start_node(const std::filesystem::path& data_dir,
                                          const std::filesystem::path& log_file,
                                          const std::vector<std::string>& sets = {});

/// Reads a whole file; "" when it does not exist.
std::string read_file(const std::filesystem::path& path);

} // namespace shoal::test
