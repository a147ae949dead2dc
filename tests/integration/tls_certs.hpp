// SPDX-License-Identifier: Apache-2.0
#pragma once

// Certificates for the TLS cluster tests, made with the openssl command (Debian's openssl,
// which ca-certificates in scripts/setup.sh depends on): a CA and, per member, a key and a
// certificate it signed, named `<ca>.crt`, `<ca>-<id>.key`, `<ca>-<id>.crt` in one
// directory; and the --set options that give a member its files.

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/shoal_process.hpp"

namespace shoal::test {

class tls_certs {
public:
  explicit tls_certs(std::filesystem::path dir) : dir_(std::move(dir)) {}

  /// A CA `ca` and, for each of `ids`, a key and a certificate it signed. False (and a
  /// gtest failure naming the command and its output) when openssl fails.
  bool make(const std::string& ca, const std::vector<std::string>& ids) const {
    const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    if (!run("openssl req -x509 " + ec + " -days 2 -subj '/CN=" + ca + "' -keyout " + ca
             + ".key -out " + ca + ".crt"))
      return false;
    for (const auto& id : ids) {
      const auto name = ca + "-" + id;
      if (!run("openssl req " + ec + " -subj '/CN=" + id + "' -keyout " + name + ".key -out " + name
               + ".csr")
          || !run("openssl x509 -req -in " + name + ".csr -CA " + ca + ".crt -CAkey " + ca
                  + ".key -CAcreateserial -days 2 -out " + name + ".crt"))
        return false;
    }
    return true;
  }

  /// The --set options that give member `id` its files from `ca`, trusting `trusted`
  /// (by default the same CA).
  std::vector<std::string> sets(const std::string& id, const std::string& ca = "ca1",
                                std::string trusted = {}) const {
    if (trusted.empty()) trusted = ca;
    const auto at = [&](const std::string& file) { return (dir_ / file).string(); };
    return {"cluster.tls_certificate=" + at(ca + "-" + id + ".crt"),
            "cluster.tls_key=" + at(ca + "-" + id + ".key"),
            "cluster.tls_ca=" + at(trusted + ".crt")};
  }

private:
  bool run(const std::string& command) const {
    auto full = "cd '" + dir_.string() + "' && " + command + " >>openssl.log 2>&1";
    int rc = std::system(full.c_str());
    if (rc != 0) ADD_FAILURE() << "failed: " << command << "\n" << read_file(dir_ / "openssl.log");
    return rc == 0;
  }

  std::filesystem::path dir_;
};

} // namespace shoal::test
