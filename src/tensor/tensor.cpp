#include "tensor/tensor.hpp"

#include "device/runtime.hpp"

#include <cstdio>
#include <numeric>

namespace llaisys {

Storage::Storage(size_t bytes, llaisysDeviceType_t device, int device_id)
    : data_(nullptr), bytes_(bytes), device_(device), device_id_(device_id) {
    device::check_device(device, device_id);
    const LlaisysRuntimeAPI *api = device::runtime_api(device);
    api->set_device(device_id);
    data_ = static_cast<std::byte *>(api->malloc_device(bytes));
    LLAISYS_CHECK(data_ != nullptr, LLAISYS_ERR_OUT_OF_MEMORY, "cannot allocate ", bytes,
                  " bytes on device type ", int(device));
}

Storage::~Storage() {
    const LlaisysRuntimeAPI *api = device::runtime_api(device_);
    api->set_device(device_id_);
    api->free_device(data_);
}

std::string shape_str(const std::vector<size_t> &shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

static std::vector<ptrdiff_t> contiguous_strides(const std::vector<size_t> &shape) {
    std::vector<ptrdiff_t> strides(shape.size());
    ptrdiff_t s = 1;
    for (size_t i = shape.size(); i-- > 0;) {
        strides[i] = s;
        s *= ptrdiff_t(shape[i]);
    }
    return strides;
}

Tensor::Tensor(std::shared_ptr<Storage> storage, std::vector<size_t> shape,
               std::vector<ptrdiff_t> strides, llaisysDataType_t dtype, size_t offset)
    : storage_(std::move(storage)), shape_(std::move(shape)), strides_(std::move(strides)),
      dtype_(dtype), offset_(offset) {}

tensor_t Tensor::create(const std::vector<size_t> &shape, llaisysDataType_t dtype,
                        llaisysDeviceType_t device, int device_id) {
    CHECK_SHAPE(shape.size() <= LLAISYS_MAX_NDIM, "tensor rank ", shape.size(), " exceeds ",
                LLAISYS_MAX_NDIM);
    size_t n = 1;
    for (size_t d : shape) n *= d;
    if (dtype_is_quantized(dtype))
        CHECK_SHAPE(!shape.empty() && shape.back() % dtype_block_elems(dtype) == 0,
                    dtype_name(dtype), " tensor's last dim must be a multiple of 32, got ",
                    shape_str(shape));
    auto storage = std::make_shared<Storage>(dtype_bytes(dtype, n), device, device_id);
    return tensor_t(new Tensor(storage, shape, contiguous_strides(shape), dtype, 0));
}

std::byte *Tensor::data() const { return storage_->data() + offset_; }

size_t Tensor::numel() const {
    return std::accumulate(shape_.begin(), shape_.end(), size_t(1), std::multiplies<>());
}

bool Tensor::is_contiguous() const {
    ptrdiff_t expected = 1;
    for (size_t i = shape_.size(); i-- > 0;) {
        if (shape_[i] != 1 && strides_[i] != expected) return false;
        expected *= ptrdiff_t(shape_[i]);
    }
    return true;
}

bool Tensor::rows_contiguous() const {
    ptrdiff_t expected = 1;
    for (size_t i = shape_.size(); i-- > 1;) {
        if (shape_[i] != 1 && strides_[i] != expected) return false;
        expected *= ptrdiff_t(shape_[i]);
    }
    return shape_.empty() || shape_[0] <= 1 || strides_[0] >= expected;
}

void Tensor::load(const void *host) {
    CHECK_ARG(host != nullptr || numel() == 0, "tensorLoad: null source");
    CHECK_SHAPE(is_contiguous(), "tensorLoad: tensor is not contiguous");
    const LlaisysRuntimeAPI *api = device::runtime_api(device_type());
    api->set_device(device_id());
    api->memcpy_sync(data(), host, nbytes(),
                     device_type() == LLAISYS_DEVICE_CPU ? LLAISYS_MEMCPY_H2H : LLAISYS_MEMCPY_H2D);
}

void Tensor::read(void *host) const {
    CHECK_ARG(host != nullptr || numel() == 0, "tensorRead: null destination");
    CHECK_SHAPE(is_contiguous(), "tensorRead: tensor is not contiguous");
    const LlaisysRuntimeAPI *api = device::runtime_api(device_type());
    api->set_device(device_id());
    api->memcpy_sync(host, data(), nbytes(),
                     device_type() == LLAISYS_DEVICE_CPU ? LLAISYS_MEMCPY_H2H : LLAISYS_MEMCPY_D2H);
}

tensor_t Tensor::view(const std::vector<size_t> &shape) const {
    CHECK_SHAPE(shape.size() <= LLAISYS_MAX_NDIM, "view: rank ", shape.size(), " too large");
    size_t n = std::accumulate(shape.begin(), shape.end(), size_t(1), std::multiplies<>());
    CHECK_SHAPE(n == numel(), "view: cannot view ", shape_str(shape_), " as ", shape_str(shape));
    if (dtype_is_quantized(dtype_)) {
        CHECK_SHAPE(is_contiguous() && !shape.empty() && shape.back() % 32 == 0,
                    "view: quantized tensors only take contiguous views keeping 32-blocks");
        return tensor_t(new Tensor(storage_, shape, contiguous_strides(shape), dtype_, offset_));
    }
    // torch's rule: old dims that are contiguous among themselves form chunks, and each
    // chunk may be split or merged freely; a view crossing a chunk boundary needs a copy.
    std::vector<ptrdiff_t> new_strides(shape.size(), 1);
    if (!shape_.empty() && n > 0) {
        ptrdiff_t view_d = ptrdiff_t(shape.size()) - 1;
        ptrdiff_t chunk_base = strides_.back();
        size_t tensor_numel = 1, view_numel = 1;
        for (ptrdiff_t td = ptrdiff_t(shape_.size()) - 1; td >= 0; --td) {
            tensor_numel *= shape_[td];
            bool chunk_ends = td == 0 || (shape_[td - 1] != 1 &&
                                          strides_[td - 1] != ptrdiff_t(tensor_numel) * chunk_base);
            if (!chunk_ends) continue;
            while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
                new_strides[view_d] = ptrdiff_t(view_numel) * chunk_base;
                view_numel *= shape[view_d];
                --view_d;
            }
            CHECK_SHAPE(view_numel == tensor_numel, "view: ", info(), " is not expressible as ",
                        shape_str(shape), " without a copy");
            if (td > 0) {
                chunk_base = strides_[td - 1];
                tensor_numel = 1;
                view_numel = 1;
            }
        }
        CHECK_SHAPE(view_d == -1, "view: ", info(), " is not expressible as ", shape_str(shape));
    } else {
        new_strides = contiguous_strides(shape);
    }
    return tensor_t(new Tensor(storage_, shape, new_strides, dtype_, offset_));
}

tensor_t Tensor::permute(const std::vector<size_t> &order) const {
    CHECK_SHAPE(order.size() == ndim(), "permute: order has ", order.size(), " dims, tensor ",
                ndim());
    CHECK_DTYPE(!dtype_is_quantized(dtype_), "permute: not defined for quantized tensors");
    std::vector<bool> seen(ndim(), false);
    std::vector<size_t> shape(ndim());
    std::vector<ptrdiff_t> strides(ndim());
    for (size_t i = 0; i < order.size(); ++i) {
        CHECK_ARG(order[i] < ndim() && !seen[order[i]], "permute: order is not a permutation");
        seen[order[i]] = true;
        shape[i] = shape_[order[i]];
        strides[i] = strides_[order[i]];
    }
    return tensor_t(new Tensor(storage_, shape, strides, dtype_, offset_));
}

tensor_t Tensor::slice(size_t dim, size_t start, size_t end) const {
    CHECK_ARG(dim < ndim(), "slice: dim ", dim, " out of range for rank ", ndim());
    CHECK_ARG(start <= end && end <= shape_[dim], "slice: [", start, ", ", end,
              ") out of range for size ", shape_[dim]);
    std::vector<size_t> shape = shape_;
    shape[dim] = end - start;
    size_t elem_offset = start * size_t(strides_[dim]);
    if (dtype_is_quantized(dtype_))
        CHECK_SHAPE(dim == 0 || dim + 1 < ndim(), "slice: quantized tensors slice whole rows");
    size_t offset = offset_ + dtype_bytes(dtype_, elem_offset);
    return tensor_t(new Tensor(storage_, shape, strides_, dtype_, offset));
}

// Defined in ops/rearrange (a strided copy on the tensor's device).
void rearrange(tensor_t out, tensor_t in);

tensor_t Tensor::contiguous() const {
    tensor_t self(new Tensor(storage_, shape_, strides_, dtype_, offset_));
    if (is_contiguous()) return self;
    tensor_t out = create(shape_, dtype_, device_type(), device_id());
    rearrange(out, self);
    return out;
}

std::string Tensor::info() const {
    std::string strides = "[";
    for (size_t i = 0; i < strides_.size(); ++i)
        strides += (i ? ", " : "") + std::to_string(strides_[i]);
    return str_cat("Tensor(shape=", shape_str(shape_), ", strides=", strides,
                   "], dtype=", dtype_name(dtype_), ", device=", int(device_type()), ":",
                   device_id(), ")");
}

void Tensor::debug() const {
    std::printf("%s\n", info().c_str());
    if (!dtype_is_float(dtype_) && dtype_ != LLAISYS_DTYPE_I64 && dtype_ != LLAISYS_DTYPE_I32) {
        std::fflush(stdout);
        return;
    }
    tensor_t c = contiguous();
    std::vector<std::byte> host(c->nbytes());
    c->read(host.data());
    size_t n = numel();
    for (size_t i = 0; i < n; ++i) {
        const std::byte *p = host.data() + i * dtype_size(dtype_);
        switch (dtype_) {
        case LLAISYS_DTYPE_F32:
            std::printf("%g ", *reinterpret_cast<const float *>(p));
            break;
        case LLAISYS_DTYPE_F16:
            std::printf("%g ", f16_to_f32(*reinterpret_cast<const fp16_t *>(p)));
            break;
        case LLAISYS_DTYPE_BF16:
            std::printf("%g ", bf16_to_f32(*reinterpret_cast<const bf16_t *>(p)));
            break;
        case LLAISYS_DTYPE_I32:
            std::printf("%d ", *reinterpret_cast<const int32_t *>(p));
            break;
        default:
            std::printf("%lld ", static_cast<long long>(*reinterpret_cast<const int64_t *>(p)));
        }
        if (!shape_.empty() && (i + 1) % shape_.back() == 0) std::printf("\n");
    }
    std::fflush(stdout);
}

} // namespace llaisys
