// SPDX-License-Identifier: Apache-2.0
#include "remote/tls.hpp"

#include <memory>

#include <dlfcn.h>

#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/openssl/manager.hpp>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include "config/settings.hpp"

namespace shoal::remote {

namespace {

template <class T, void (*Free)(T*)>
struct deleter {
  void operator()(T* p) const noexcept {
    Free(p);
  }
};
using ctx_ptr = std::unique_ptr<SSL_CTX, deleter<SSL_CTX, SSL_CTX_free>>;
using store_ptr = std::unique_ptr<X509_STORE, deleter<X509_STORE, X509_STORE_free>>;
using key_ptr = std::unique_ptr<EVP_PKEY, deleter<EVP_PKEY, EVP_PKEY_free>>;
using bio_ptr = std::unique_ptr<BIO, deleter<BIO, BIO_free_all>>;
using store_ctx_ptr = std::unique_ptr<X509_STORE_CTX, deleter<X509_STORE_CTX, X509_STORE_CTX_free>>;

/// OpenSSL's reason for the last failure, without file names (they are in the setting
/// named with it).
std::string openssl_reason() {
  auto code = ERR_peek_last_error();
  ERR_clear_error();
  if (code == 0) return "unreadable";
  const char* reason = ERR_reason_error_string(code);
  return reason ? reason : "unreadable";
}

} // namespace

bool tls_enabled(const config::cluster_settings& c) {
  return !c.tls_certificate.empty() && !c.tls_key.empty() && !c.tls_ca.empty();
}

std::string check_tls_files(const config::cluster_settings& c) {
  if (!tls_enabled(c)) return {};
  ERR_clear_error();
  ctx_ptr ctx{SSL_CTX_new(TLS_method())};
  if (!ctx) return "cannot set up OpenSSL: " + openssl_reason();
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), c.tls_certificate.c_str()) != 1)
    return "cluster.tls_certificate: not a PEM certificate chain (" + openssl_reason() + ")";
  // Read apart from the certificate first: loading it into the context would report a
  // key of another certificate as a mismatch of "key values", not as what it is.
  key_ptr key;
  if (bio_ptr in{BIO_new_file(c.tls_key.c_str(), "r")})
    key.reset(PEM_read_bio_PrivateKey(in.get(), nullptr, nullptr, nullptr));
  if (!key) return "cluster.tls_key: not a PEM private key (" + openssl_reason() + ")";
  ERR_clear_error();
  if (SSL_CTX_use_PrivateKey(ctx.get(), key.get()) != 1
      || SSL_CTX_check_private_key(ctx.get()) != 1) {
    ERR_clear_error();
    return "cluster.tls_key: does not belong to cluster.tls_certificate";
  }
  store_ptr store{X509_STORE_new()};
  if (!store || X509_STORE_load_file(store.get(), c.tls_ca.c_str()) != 1)
    return "cluster.tls_ca: not a PEM CA certificate (" + openssl_reason() + ")";
  store_ctx_ptr verify{X509_STORE_CTX_new()};
  X509* own = SSL_CTX_get0_certificate(ctx.get());
  STACK_OF(X509)* chain = nullptr;
  SSL_CTX_get0_chain_certs(ctx.get(), &chain);
  if (!verify || X509_STORE_CTX_init(verify.get(), store.get(), own, chain) != 1)
    return "cannot set up certificate verification: " + openssl_reason();
  if (X509_verify_cert(verify.get()) != 1)
    return std::string("cluster.tls_certificate: not signed by cluster.tls_ca (")
           + X509_verify_cert_error_string(X509_STORE_CTX_get_error(verify.get())) + ")";
  return {};
}

void configure_tls(caf::actor_system_config& cfg, const config::cluster_settings& c) {
  cfg.load<caf::openssl::manager>();
  // With a certificate, a key and a CA set, CAF's sessions require and verify a peer
  // certificate on both ends (SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT) and
  // use authenticated ciphers only.
  cfg.openssl_certificate = c.tls_certificate;
  cfg.openssl_key = c.tls_key;
  cfg.openssl_cafile = c.tls_ca;
}

} // namespace shoal::remote

// -- CAF 0.17's OpenSSL sessions and the thread's error queue ------------------------------
//
// OpenSSL's SSL_get_error() reads the calling thread's error queue, which must be empty
// before an I/O call (see SSL_get_error(3)). CAF 0.17.6's sessions never empty it: after
// one connection fails (a peer with a certificate of another CA, or a redundant
// connection that is closed), the next SSL_read on any other connection of the
// multiplexer thread that only wants more bytes is reported as SSL_ERROR_SSL, and CAF
// drops that healthy connection. These definitions, in the executable, come before
// libssl's for every library (the dynamic linker takes the executable's first), empty
// the queue and call libssl's own. Asio's SSL streams (the webhook client) empty it
// themselves; for them this changes nothing.
namespace {

template <class F>
F next_definition(const char* name) {
  return reinterpret_cast<F>(dlsym(RTLD_NEXT, name));
}

} // namespace

extern "C" {

int SSL_read(SSL* ssl, void* buf, int num) {
  static const auto real = next_definition<int (*)(SSL*, void*, int)>("SSL_read");
  ERR_clear_error();
  return real(ssl, buf, num);
}

int SSL_write(SSL* ssl, const void* buf, int num) {
  static const auto real = next_definition<int (*)(SSL*, const void*, int)>("SSL_write");
  ERR_clear_error();
  return real(ssl, buf, num);
}

int SSL_connect(SSL* ssl) {
  static const auto real = next_definition<int (*)(SSL*)>("SSL_connect");
  ERR_clear_error();
  return real(ssl);
}

int SSL_accept(SSL* ssl) {
  static const auto real = next_definition<int (*)(SSL*)>("SSL_accept");
  ERR_clear_error();
  return real(ssl);
}

} // extern "C"
