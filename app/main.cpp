// SPDX-License-Identifier: Apache-2.0
// The composition root: parse the command line, load the config, run a node.

#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "actors/actor_api.hpp"
#include "app/node.hpp"
#include "examples/shop/shop.hpp"
#include "config/settings.hpp"
#include "workers/handlers.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Shoal: an actor-based backend in one binary"};
  app.set_version_flag("--version", std::string("shoal ") + SHOAL_VERSION);
  app.require_subcommand(1);

  auto* serve = app.add_subcommand("serve", "run a node");
  std::string config_file;
  std::vector<std::string> overrides;
  serve->add_option("-c,--config", config_file, "TOML config file (see config/single-node.toml)");
  serve->add_option("--set", overrides, "override a key: --set section.key=value (repeatable)");

  CLI11_PARSE(app, argc, argv);

  shoal::config::settings settings;
  try {
    settings = shoal::config::load(
      config_file.empty() ? std::nullopt : std::optional<std::string>{config_file}, overrides);
  } catch (const shoal::config::config_error& e) {
    std::fprintf(stderr, "shoal: configuration error: %s\n", e.what());
    return 2;
  }
  // Actor types are registered here, one line each, before the node starts.
  shoal::actors::actor_registry actor_types;
  actor_types.add(shoal::actors::make_counter_type());
  shoal::examples::shop::register_types(actor_types);
  // Job handlers likewise, by job type (docs/jobs.md); webhook and collection.stats are built in.
  shoal::workers::handler_registry job_handlers;
  return shoal::app::serve(settings, actor_types, job_handlers);
}
