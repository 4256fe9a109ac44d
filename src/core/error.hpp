// Errors inside the core are exceptions carrying a status; every C API entry point
// turns them into a return code plus a thread-local message (api_guard).
#pragma once

#include "llaisys/llaisys.h"

#include <cstdio>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace llaisys {

class Error : public std::runtime_error {
public:
    Error(llaisysStatus_t status, const std::string &message)
        : std::runtime_error(message), status_(status) {}
    llaisysStatus_t status() const { return status_; }

private:
    llaisysStatus_t status_;
};

void set_last_error(const std::string &message);

// Message pieces appended without iostreams: the library may share a process whose
// libstdc++ locale objects are not the ones it was built against (seen on a CUDA image),
// where formatting numbers through an ostream crashed. Numbers print as an ostream would.
namespace detail {
inline void append(std::string &s, const std::string &v) { s += v; }
inline void append(std::string &s, const char *v) { s += v ? v : "(null)"; }
inline void append(std::string &s, char v) { s += v; }
template <typename T> void append(std::string &s, const T &v) {
    char buf[40];
    if constexpr (std::is_same_v<T, bool>) {
        s += v ? '1' : '0';
    } else if constexpr (std::is_integral_v<T>) {
        s += std::to_string(v);
    } else if constexpr (std::is_enum_v<T>) {
        s += std::to_string(static_cast<std::underlying_type_t<T>>(v));
    } else if constexpr (std::is_floating_point_v<T>) {
        std::snprintf(buf, sizeof buf, "%g", double(v));
        s += buf;
    } else if constexpr (std::is_same_v<std::decay_t<T>, char *>) { // a mutable string or
        append(s, static_cast<const char *>(v));                    // char array: its text
    } else {
        static_assert(std::is_pointer_v<T>, "str_cat: unsupported argument type");
        std::snprintf(buf, sizeof buf, "%p", static_cast<const void *>(v));
        s += buf;
    }
}
} // namespace detail

template <typename... Args> std::string str_cat(const Args &...args) {
    std::string s;
    (detail::append(s, args), ...);
    return s;
}

template <typename... Args> [[noreturn]] void fail(llaisysStatus_t status, const Args &...args) {
    throw Error(status, str_cat(args...));
}

// Runs f and maps what it throws to a status; the message goes to llaisysGetLastError.
template <typename F> llaisysStatus_t api_guard(F &&f) noexcept {
    try {
        f();
        return LLAISYS_OK;
    } catch (const Error &e) {
        set_last_error(e.what());
        return e.status();
    } catch (const std::bad_alloc &) {
        set_last_error("out of memory");
        return LLAISYS_ERR_OUT_OF_MEMORY;
    } catch (const std::exception &e) {
        set_last_error(e.what());
        return LLAISYS_ERR_INTERNAL;
    } catch (...) {
        set_last_error("unknown internal error");
        return LLAISYS_ERR_INTERNAL;
    }
}

} // namespace llaisys

#define LLAISYS_CHECK(cond, status, ...)                                                           \
    do {                                                                                           \
        if (!(cond)) ::llaisys::fail(status, __VA_ARGS__);                                         \
    } while (0)
#define CHECK_ARG(cond, ...) LLAISYS_CHECK(cond, LLAISYS_ERR_INVALID_ARGUMENT, __VA_ARGS__)
#define CHECK_SHAPE(cond, ...) LLAISYS_CHECK(cond, LLAISYS_ERR_SHAPE, __VA_ARGS__)
#define CHECK_DTYPE(cond, ...) LLAISYS_CHECK(cond, LLAISYS_ERR_DTYPE, __VA_ARGS__)
#define CHECK_DEVICE(cond, ...) LLAISYS_CHECK(cond, LLAISYS_ERR_DEVICE, __VA_ARGS__)
