// Tensor: a strided view (shape, strides in elements, byte offset) over shared storage.
#pragma once

#include "core/dtype.hpp"
#include "llaisys/tensor.h"

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace llaisys {

// One device allocation, freed when the last tensor viewing it goes.
class Storage {
public:
    Storage(size_t bytes, llaisysDeviceType_t device, int device_id);
    ~Storage();
    Storage(const Storage &) = delete;
    Storage &operator=(const Storage &) = delete;
    std::byte *data() const { return data_; }
    size_t bytes() const { return bytes_; }
    llaisysDeviceType_t device() const { return device_; }
    int device_id() const { return device_id_; }

private:
    std::byte *data_;
    size_t bytes_;
    llaisysDeviceType_t device_;
    int device_id_;
};

class Tensor;
using tensor_t = std::shared_ptr<Tensor>;

class Tensor {
public:
    static tensor_t create(const std::vector<size_t> &shape, llaisysDataType_t dtype,
                           llaisysDeviceType_t device = LLAISYS_DEVICE_CPU, int device_id = 0);

    std::byte *data() const; // first element
    size_t ndim() const { return shape_.size(); }
    const std::vector<size_t> &shape() const { return shape_; }
    const std::vector<ptrdiff_t> &strides() const { return strides_; }
    size_t dim(size_t i) const { return shape_.at(i); }
    llaisysDataType_t dtype() const { return dtype_; }
    llaisysDeviceType_t device_type() const { return storage_->device(); }
    int device_id() const { return storage_->device_id(); }
    size_t numel() const;
    size_t nbytes() const { return dtype_bytes(dtype_, numel()); } // when contiguous
    bool is_contiguous() const;
    // Contiguous except possibly for the stride of dim 0 (rows at a fixed pitch).
    bool rows_contiguous() const;

    void load(const void *host); // host -> tensor (contiguous)
    void read(void *host) const; // tensor -> host (contiguous)

    tensor_t view(const std::vector<size_t> &shape) const;
    tensor_t permute(const std::vector<size_t> &order) const;
    tensor_t slice(size_t dim, size_t start, size_t end) const;
    tensor_t contiguous() const;

    std::string info() const; // shape, strides, dtype, device
    void debug() const;       // info and values to stdout

private:
    Tensor(std::shared_ptr<Storage> storage, std::vector<size_t> shape,
           std::vector<ptrdiff_t> strides, llaisysDataType_t dtype, size_t offset);

    std::shared_ptr<Storage> storage_;
    std::vector<size_t> shape_;
    std::vector<ptrdiff_t> strides_;
    llaisysDataType_t dtype_;
    size_t offset_; // bytes from the storage start to element 0
};

std::string shape_str(const std::vector<size_t> &shape);

} // namespace llaisys

// The C handle: a shared reference to a Tensor.
struct LlaisysTensor {
    llaisys::tensor_t tensor;
};
