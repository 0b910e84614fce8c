//! Four f32 lanes: one WebAssembly SIMD vector in the browser, plain arrays elsewhere (which
//! native compilers vectorise on their own). LLVM leaves the kernels' loops scalar when it
//! compiles them for wasm32, so the kernels say what goes in a vector.
//!
//! Both forms multiply, then add (WebAssembly SIMD has no fused multiply-add): native tests of
//! the kernels check the browser's arithmetic.

/// Splits `values` into groups of four (its length must be a multiple of four).
#[inline(always)]
pub fn quads(values: &[f32]) -> &[[f32; 4]] {
    let (quads, rest) = values.as_chunks::<4>();
    debug_assert!(rest.is_empty());
    quads
}

#[inline(always)]
pub fn quads_mut(values: &mut [f32]) -> &mut [[f32; 4]] {
    let (quads, rest) = values.as_chunks_mut::<4>();
    debug_assert!(rest.is_empty());
    quads
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod vector {
    use core::arch::wasm32::{f32x4_add, f32x4_max, f32x4_min, f32x4_mul, f32x4_splat, v128, v128_load, v128_store};

    #[derive(Clone, Copy)]
    pub struct F32x4(v128);

    impl F32x4 {
        #[inline(always)]
        pub fn load(q: &[f32; 4]) -> Self {
            // SAFETY: `q` is four readable floats; wasm loads need no alignment.
            Self(unsafe { v128_load(q.as_ptr().cast()) })
        }

        #[inline(always)]
        pub fn splat(v: f32) -> Self {
            Self(f32x4_splat(v))
        }

        #[inline(always)]
        pub fn store(self, q: &mut [f32; 4]) {
            // SAFETY: `q` is four writable floats.
            unsafe { v128_store(q.as_mut_ptr().cast(), self.0) }
        }

        /// `self + a * b`.
        #[inline(always)]
        pub fn mul_add(self, a: Self, b: Self) -> Self {
            Self(f32x4_add(self.0, f32x4_mul(a.0, b.0)))
        }

        #[inline(always)]
        pub fn relu(self) -> Self {
            Self(f32x4_max(self.0, f32x4_splat(0.0)))
        }

        #[inline(always)]
        pub fn add(self, other: Self) -> Self {
            Self(f32x4_add(self.0, other.0))
        }

        #[inline(always)]
        pub fn max(self, other: Self) -> Self {
            Self(f32x4_max(self.0, other.0))
        }

        #[inline(always)]
        pub fn relu6(self) -> Self {
            Self(f32x4_min(f32x4_max(self.0, f32x4_splat(0.0)), f32x4_splat(6.0)))
        }
    }
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
mod vector {
    #[derive(Clone, Copy)]
    pub struct F32x4([f32; 4]);

    impl F32x4 {
        #[inline(always)]
        pub fn load(q: &[f32; 4]) -> Self {
            Self(*q)
        }

        #[inline(always)]
        pub fn splat(v: f32) -> Self {
            Self([v; 4])
        }

        #[inline(always)]
        pub fn store(self, q: &mut [f32; 4]) {
            *q = self.0;
        }

        /// `self + a * b`, rounded after the product as the browser's SIMD does.
        #[inline(always)]
        pub fn mul_add(self, a: Self, b: Self) -> Self {
            Self(std::array::from_fn(|i| self.0[i] + a.0[i] * b.0[i]))
        }

        #[inline(always)]
        pub fn relu(self) -> Self {
            Self(self.0.map(|v| v.max(0.0)))
        }

        #[inline(always)]
        pub fn add(self, other: Self) -> Self {
            Self(std::array::from_fn(|i| self.0[i] + other.0[i]))
        }

        #[inline(always)]
        pub fn max(self, other: Self) -> Self {
            Self(std::array::from_fn(|i| self.0[i].max(other.0[i])))
        }

        #[inline(always)]
        pub fn relu6(self) -> Self {
            Self(self.0.map(|v| v.clamp(0.0, 6.0)))
        }
    }
}

pub use vector::F32x4;
