/*
 * Checks that libpmem.h can be used from C++: the header compiles as C++ and
 * declares every function with C linkage, so that each one links against
 * pmem-capi's libpmem.so under its unmangled name. Missing `extern "C"`
 * would leave mangled references that fail to link.
 *
 * Exits 0 on success, 1 (with a message on stderr) on failure.
 */

#include <libpmem.h>

#include <cstdio>
#include <cstring>

namespace {

/* Address of every function in the header; the linker must resolve each. */
using fn = void (*)();
const fn all_functions[] = {
    reinterpret_cast<fn>(&pmem_map_file),
    reinterpret_cast<fn>(&pmem_unmap),
    reinterpret_cast<fn>(&pmem_is_pmem),
    reinterpret_cast<fn>(&pmem_persist),
    reinterpret_cast<fn>(&pmem_msync),
    reinterpret_cast<fn>(&pmem_has_auto_flush),
    reinterpret_cast<fn>(&pmem_flush),
    reinterpret_cast<fn>(&pmem_deep_flush),
    reinterpret_cast<fn>(&pmem_deep_drain),
    reinterpret_cast<fn>(&pmem_deep_persist),
    reinterpret_cast<fn>(&pmem_drain),
    reinterpret_cast<fn>(&pmem_has_hw_drain),
    reinterpret_cast<fn>(&pmem_memmove_persist),
    reinterpret_cast<fn>(&pmem_memcpy_persist),
    reinterpret_cast<fn>(&pmem_memset_persist),
    reinterpret_cast<fn>(&pmem_memmove_nodrain),
    reinterpret_cast<fn>(&pmem_memcpy_nodrain),
    reinterpret_cast<fn>(&pmem_memset_nodrain),
    reinterpret_cast<fn>(&pmem_memmove),
    reinterpret_cast<fn>(&pmem_memcpy),
    reinterpret_cast<fn>(&pmem_memset),
    reinterpret_cast<fn>(&pmem_check_version),
    reinterpret_cast<fn>(&pmem_errormsg),
};

static_assert(sizeof all_functions / sizeof all_functions[0] == 23,
              "libpmem.h 1.1 has 23 functions");
static_assert(PMEM_F_MEM_VALID_FLAGS == 63u, "PMEM_F_MEM_VALID_FLAGS");
static_assert(PMEM_MIN_PART == 2u * 1024 * 1024, "PMEM_MIN_PART");

} // namespace

int main() {
  int failures = 0;
  for (fn f : all_functions) {
    if (f == nullptr) {
      std::fprintf(stderr, "FAIL: a function resolved to NULL\n");
      failures++;
    }
  }
  if (pmem_check_version(PMEM_MAJOR_VERSION, PMEM_MINOR_VERSION) != nullptr) {
    std::fprintf(stderr, "FAIL: pmem_check_version refuses the header's own "
                         "version\n");
    failures++;
  }
  const char *msg = pmem_check_version(PMEM_MAJOR_VERSION + 1, 0);
  if (msg == nullptr || std::strcmp(msg, pmem_errormsg()) != 0) {
    std::fprintf(stderr, "FAIL: pmem_check_version(2, 0) gave \"%s\"\n",
                 msg ? msg : "(NULL)");
    failures++;
  }
  char buf[16] = {};
  if (pmem_memset_persist(buf, 'x', sizeof buf - 1) != buf ||
      std::strcmp(buf, "xxxxxxxxxxxxxxx") != 0) {
    std::fprintf(stderr, "FAIL: pmem_memset_persist from C++\n");
    failures++;
  }
  std::printf("cxx_linkage: %d failed\n", failures);
  return failures == 0 ? 0 : 1;
}
