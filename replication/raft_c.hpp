// SPDX-License-Identifier: Apache-2.0
#pragma once

// libraft 0.15's headers declare C functions without extern "C" guards: include them
// through here only. For the .cpp files of replication/ and their tests; keep it out of
// headers others include.

extern "C" {
#include <raft.h>
}
