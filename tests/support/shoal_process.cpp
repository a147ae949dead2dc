// SPDX-License-Identifier: Apache-2.0
#include "tests/support/shoal_process.hpp"

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#ifndef SHOAL_BINARY
#error "SHOAL_BINARY must name the shoal executable under test"
#endif

namespace shoal::test {

namespace {

constexpr auto poll_interval = 10ms;
constexpr std::string_view listening_marker = "listening on http://";

int open_or_throw(const std::filesystem::path& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC, 0644);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "open " + path.string());
  return fd;
}

/// The port of the first `listening on http://HOST:PORT` line in `log`, or 0.
std::uint16_t find_port(std::string_view log) {
  auto at = log.find(listening_marker);
  if (at == std::string_view::npos) return 0;
  auto line = log.substr(at + listening_marker.size());
  line = line.substr(0, line.find('\n'));
  auto colon = line.rfind(':');
  if (colon == std::string_view::npos) return 0;
  unsigned long port = 0;
  std::size_t digits = 0;
  for (char c : line.substr(colon + 1)) {
    if (c < '0' || c > '9') break;
    port = port * 10 + static_cast<unsigned long>(c - '0');
    if (port > 65535) return 0;
    ++digits;
  }
  return digits > 0 ? static_cast<std::uint16_t>(port) : 0;
}

int decode_status(int raw) {
  if (WIFEXITED(raw)) return WEXITSTATUS(raw);
  if (WIFSIGNALED(raw)) return 128 + WTERMSIG(raw);
  return -1;
}

/// Closes every descriptor from 3 up in the child, so that sockets and files of the
/// test process do not leak into the node. Only async-signal-safe calls.
void close_inherited_fds(int max_fd) {
#ifdef SYS_close_range
  if (::syscall(SYS_close_range, 3u, ~0u, 0u) == 0) return;
#endif
  for (int fd = 3; fd < max_fd; ++fd)
    ::close(fd);
}

} // namespace

std::string shoal_binary() {
  if (const char* path = std::getenv("SHOAL_BINARY"); path != nullptr && *path != '\0') return path;
  return SHOAL_BINARY;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

shoal_process::shoal_process(process_options opts) : opts_(std::move(opts)) {
  // Everything the child needs is prepared before fork: after it, the child of a
  // multi-threaded process may only make async-signal-safe calls.
  std::vector<std::string> argv_storage;
  argv_storage.push_back(opts_.binary);
  argv_storage.insert(argv_storage.end(), opts_.args.begin(), opts_.args.end());
  std::vector<char*> argv;
  for (auto& a : argv_storage)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  // The environment is built before fork: the child only calls async-signal-safe functions.
  // The added entries come first: getenv takes the first of two with the same name.
  std::vector<std::string> env_storage = opts_.env;
  for (char** e = environ; *e != nullptr; ++e)
    env_storage.emplace_back(*e);
  std::vector<char*> envp;
  for (auto& e : env_storage)
    envp.push_back(e.data());
  envp.push_back(nullptr);

  int null_fd = open_or_throw("/dev/null", O_RDONLY);
  int out_fd = -1;
  int err_fd = -1;
  try {
    out_fd = open_or_throw(opts_.log_file, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND);
    err_fd = opts_.stderr_file.empty()
               ? out_fd
               : open_or_throw(opts_.stderr_file, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND);
  } catch (...) {
    ::close(null_fd);
    if (out_fd >= 0) ::close(out_fd);
    throw;
  }
  rlimit limit{};
  int max_fd = ::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < 65536
                 ? static_cast<int>(limit.rlim_cur)
                 : 65536;
  pid_t parent = ::getpid();

  pid_t pid = ::fork();
  if (pid == 0) {
    // The node must not outlive a test process that dies without cleaning up.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (::dup2(null_fd, 0) < 0 || ::dup2(out_fd, 1) < 0 || ::dup2(err_fd, 2) < 0) ::_exit(127);
    close_inherited_fds(max_fd);
    ::execve(argv[0], argv.data(), envp.data());
    const char msg[] = "shoal_process: execve failed\n";
    auto ignored = ::write(2, msg, sizeof msg - 1);
    (void)ignored;
    ::_exit(127);
  }
  int fork_errno = errno;
  ::close(null_fd);
  ::close(out_fd);
  if (err_fd != out_fd) ::close(err_fd);
  if (pid < 0) throw std::system_error(fork_errno, std::generic_category(), "fork");
  pid_ = pid;
}

shoal_process::~shoal_process() {
  if (running()) kill9();
}

bool shoal_process::reap(bool block) {
  if (status_) return true;
  int raw = 0;
  for (;;) {
    pid_t r = ::waitpid(pid_, &raw, block ? 0 : WNOHANG);
    if (r == pid_) {
      status_ = decode_status(raw);
      return true;
    }
    if (r == 0) return false;
    if (errno == EINTR) continue;
    status_ = -1; // ECHILD: reaped elsewhere; nothing left to wait for
    return true;
  }
}

bool shoal_process::running() {
  return pid_ > 0 && !reap(false);
}

std::optional<std::uint16_t> shoal_process::wait_listening(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (auto port = find_port(log()); port != 0) {
      port_ = port;
      return port;
    }
    if (!running() || std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(poll_interval);
  }
}

int shoal_process::wait_exit(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (running()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      ADD_FAILURE() << "pid " << pid_ << " did not exit within " << timeout.count()
                    << " ms; killed it. Log:\n"
                    << log();
      kill9();
      return -1;
    }
    std::this_thread::sleep_for(poll_interval);
  }
  return *status_;
}

int shoal_process::stop(int signal, std::chrono::milliseconds timeout) {
  if (running()) ::kill(pid_, signal);
  return wait_exit(timeout);
}

void shoal_process::kill9() {
  if (!running()) return;
  ::kill(pid_, SIGKILL);
  reap(true);
}

std::string shoal_process::log() const {
  return read_file(opts_.log_file);
}

std::string shoal_process::stderr_text() const {
  return opts_.stderr_file.empty() ? log() : read_file(opts_.stderr_file);
}

std::vector<std::string> serve_args(const std::filesystem::path& data_dir,
                                    const std::vector<std::string>& sets) {
  std::vector<std::string> args{"serve", "--set", "http.port=0", "--set",
                                "storage.path=" + data_dir.string()};
  for (const auto& s : sets) {
    args.emplace_back("--set");
    args.push_back(s);
  }
  return args;
}

std::unique_ptr<shoal_process> start_node(const std::filesystem::path& data_dir,
                                          const std::filesystem::path& log_file,
                                          const std::vector<std::string>& sets) {
  process_options opts;
  opts.args = serve_args(data_dir, sets);
  opts.log_file = log_file;
  auto node = std::make_unique<shoal_process>(std::move(opts));
  if (!node->wait_listening()) {
    auto log = node->log();
    node->kill9();
    throw std::runtime_error(
      "shoal did not start listening (exit status "
      + (node->exit_status() ? std::to_string(*node->exit_status()) : std::string{"none"})
      + "); log:\n" + log);
  }
  return node;
}

} // namespace shoal::test
