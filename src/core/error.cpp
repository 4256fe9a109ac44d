#include "core/error.hpp"

namespace llaisys {

static thread_local std::string last_error;

void set_last_error(const std::string &message) { last_error = message; }

} // namespace llaisys

__C const char *llaisysGetLastError(void) { return llaisys::last_error.c_str(); }
