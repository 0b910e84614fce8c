//! Four f32 lanes: one WebAssembly SIMD vector in the browser, plain arrays elsewhere (which
//! native compilers vectorise on their own). LLVM leaves the kernels' loops scalar when it
//! compiles them for wasm32, so the kernels say what goes in a vector.
//!
//! Both forms multiply, then add (WebAssembly SIMD has no fused multiply-add), and round, narrow
//! and sum integers the same way: native tests of the kernels check the browser's arithmetic.

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
    use core::arch::wasm32::{
        f32x4_add, f32x4_convert_i32x4, f32x4_max, f32x4_min, f32x4_mul, f32x4_splat, i16x8_narrow_i32x4, i32x4_add,
        i32x4_dot_i16x8, i32x4_extract_lane, i32x4_splat, i32x4_trunc_sat_f32x4, v128, v128_load, v128_store,
    };

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

        /// `self * scale` rounded to the nearest integer (halves up) for values of zero and
        /// more, saturating as Rust's `as i32` does.
        #[inline(always)]
        pub fn rounded(self, scale: f32) -> I32x4 {
            I32x4(i32x4_trunc_sat_f32x4(f32x4_add(f32x4_mul(self.0, f32x4_splat(scale)), f32x4_splat(0.5))))
        }
    }

    /// Eight i16 lanes: four outputs' weights for two inputs, or a pair of inputs repeated.
    #[derive(Clone, Copy)]
    pub struct I16x8(v128);

    impl I16x8 {
        #[inline(always)]
        pub fn load(q: &[i16; 8]) -> Self {
            // SAFETY: `q` is eight readable i16; wasm loads need no alignment.
            Self(unsafe { v128_load(q.as_ptr().cast()) })
        }

        /// The pair of i16 that `word` holds (low half first) in each of the four lane pairs.
        #[inline(always)]
        pub fn splat_pair(word: u32) -> Self {
            Self(i32x4_splat(word as i32))
        }

        /// `a` then `b`, each lane saturated to i16.
        #[inline(always)]
        pub fn narrow(a: I32x4, b: I32x4) -> Self {
            Self(i16x8_narrow_i32x4(a.0, b.0))
        }

        /// The eight lanes as four words of two (low half first), as [`Self::splat_pair`] reads them.
        #[inline(always)]
        pub fn store_words(self, q: &mut [u32; 4]) {
            // SAFETY: `q` is sixteen writable bytes.
            unsafe { v128_store(q.as_mut_ptr().cast(), self.0) }
        }
    }

    /// Four i32 lanes: integer sums.
    #[derive(Clone, Copy)]
    pub struct I32x4(v128);

    impl I32x4 {
        #[inline(always)]
        pub fn zero() -> Self {
            Self(i32x4_splat(0))
        }

        #[inline(always)]
        pub fn add(self, other: Self) -> Self {
            Self(i32x4_add(self.0, other.0))
        }

        /// `self` plus, in lane `j`, `a[2j] * b[2j] + a[2j + 1] * b[2j + 1]`.
        #[inline(always)]
        pub fn dot_add(self, a: I16x8, b: I16x8) -> Self {
            Self(i32x4_add(self.0, i32x4_dot_i16x8(a.0, b.0)))
        }

        #[inline(always)]
        pub fn to_f32(self) -> F32x4 {
            F32x4(f32x4_convert_i32x4(self.0))
        }

        /// The sum of the four lanes (wrapping, as every lane's sum does).
        #[inline(always)]
        pub fn sum(self) -> i32 {
            let v = self.0;
            [i32x4_extract_lane::<1>(v), i32x4_extract_lane::<2>(v), i32x4_extract_lane::<3>(v)]
                .into_iter()
                .fold(i32x4_extract_lane::<0>(v), i32::wrapping_add)
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

        /// `self * scale` rounded to the nearest integer (halves up) for values of zero and
        /// more, saturating (NaN gives 0) as the browser's SIMD does.
        #[inline(always)]
        pub fn rounded(self, scale: f32) -> I32x4 {
            I32x4(self.0.map(|v| (v * scale + 0.5) as i32))
        }
    }

    #[derive(Clone, Copy)]
    pub struct I16x8([i16; 8]);

    impl I16x8 {
        #[inline(always)]
        pub fn load(q: &[i16; 8]) -> Self {
            Self(*q)
        }

        /// The pair of i16 that `word` holds (low half first) in each of the four lane pairs.
        #[cfg(target_arch = "x86_64")]
        #[inline(always)]
        pub fn splat_pair(word: u32) -> Self {
            // One broadcast, where building the lanes one by one takes eight inserts. SAFETY:
            // four u32 are eight i16, low half first on this little-endian target.
            Self(unsafe { std::mem::transmute::<[u32; 4], [i16; 8]>([word; 4]) })
        }

        /// The pair of i16 that `word` holds (low half first) in each of the four lane pairs.
        #[cfg(not(target_arch = "x86_64"))]
        #[inline(always)]
        pub fn splat_pair(word: u32) -> Self {
            let (low, high) = (word as u16 as i16, (word >> 16) as u16 as i16);
            Self(std::array::from_fn(|i| if i % 2 == 0 { low } else { high }))
        }

        /// `a` then `b`, each lane saturated to i16.
        #[inline(always)]
        pub fn narrow(a: I32x4, b: I32x4) -> Self {
            let lane = |v: i32| v.clamp(i16::MIN as i32, i16::MAX as i32) as i16;
            Self(std::array::from_fn(|i| lane(if i < 4 { a.0[i] } else { b.0[i - 4] })))
        }

        /// The eight lanes as four words of two (low half first), as [`Self::splat_pair`] reads them.
        #[inline(always)]
        pub fn store_words(self, q: &mut [u32; 4]) {
            *q = std::array::from_fn(|i| self.0[2 * i] as u16 as u32 | (self.0[2 * i + 1] as u16 as u32) << 16);
        }
    }

    #[derive(Clone, Copy)]
    pub struct I32x4([i32; 4]);

    impl I32x4 {
        #[inline(always)]
        pub fn zero() -> Self {
            Self([0; 4])
        }

        #[inline(always)]
        pub fn add(self, other: Self) -> Self {
            Self(std::array::from_fn(|i| self.0[i].wrapping_add(other.0[i])))
        }

        /// `self` plus, in lane `j`, `a[2j] * b[2j] + a[2j + 1] * b[2j + 1]`.
        #[cfg(target_arch = "x86_64")]
        #[inline(always)]
        pub fn dot_add(self, a: I16x8, b: I16x8) -> Self {
            use std::arch::x86_64::{__m128i, _mm_add_epi32, _mm_madd_epi16};
            // LLVM leaves the plain form below scalar here: PMADDWD is the browser's
            // `i32x4.dot_i16x8_s`, lane for lane. SAFETY: SSE2 is part of x86-64, and each array
            // is 16 bytes as `__m128i` is.
            unsafe {
                let [s, a, b] = [
                    std::mem::transmute::<[i32; 4], __m128i>(self.0),
                    std::mem::transmute::<[i16; 8], __m128i>(a.0),
                    std::mem::transmute::<[i16; 8], __m128i>(b.0),
                ];
                Self(std::mem::transmute::<__m128i, [i32; 4]>(_mm_add_epi32(s, _mm_madd_epi16(a, b))))
            }
        }

        /// `self` plus, in lane `j`, `a[2j] * b[2j] + a[2j + 1] * b[2j + 1]`.
        #[cfg(not(target_arch = "x86_64"))]
        #[inline(always)]
        pub fn dot_add(self, a: I16x8, b: I16x8) -> Self {
            let pair = |j: usize| {
                (a.0[2 * j] as i32 * b.0[2 * j] as i32).wrapping_add(a.0[2 * j + 1] as i32 * b.0[2 * j + 1] as i32)
            };
            Self(std::array::from_fn(|j| self.0[j].wrapping_add(pair(j))))
        }

        #[inline(always)]
        pub fn to_f32(self) -> F32x4 {
            F32x4(self.0.map(|v| v as f32))
        }

        /// The sum of the four lanes (wrapping, as every lane's sum does).
        #[inline(always)]
        pub fn sum(self) -> i32 {
            self.0.iter().fold(0i32, |s, v| s.wrapping_add(*v))
        }
    }
}

pub use vector::{F32x4, I16x8, I32x4};
