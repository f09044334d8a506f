//! A GGUF reader (the file format of llama.cpp): header, metadata, tensor index and dequantized tensor data.
//!
//! Written here rather than taken from a crate: the GGUF crates on crates.io either pull in a full
//! inference stack (candle, ggml bindings that build C) or do not check sizes and offsets before using them.
//! This reader parses a byte slice it does not trust: every length, count, dimension and offset is checked
//! against the bytes that remain before anything is allocated or sliced, and every failure is a
//! [`GgufError`] that names the key or tensor.
//!
//! Layout (GGUF v2 and v3, little-endian): magic `GGUF`, `u32` version, `u64` tensor count, `u64` metadata
//! count; the metadata as `(string key, u32 type, value)`; the tensor index as `(string name, u32 n_dims,
//! u64 dims[n_dims], u32 ggml type, u64 offset)`; padding to `general.alignment` (default 32); the tensor
//! data, each tensor at its offset from the start of the data section. `dims[0]` is the innermost
//! (contiguous) dimension, so a PyTorch `[out, in]` matrix is stored with `dims = [in, out]`.
//!
//! [`dequantize`] decodes F32, F16, BF16, Q8_0, Q4_0 and Q4_1 (the ggml block formats of 32 elements) and
//! the two K-quants most published GGUF files use, Q4_K and Q6_K (super-blocks of 256); the other types
//! (Q5_*, Q2_K, Q3_K, Q5_K, IQ*, …) are recognised and refused with [`GgufError::UnsupportedType`].

use std::collections::BTreeMap;

/// Everything that can be wrong with a GGUF file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GgufError {
    /// The file ends before a field it declares.
    #[error("GGUF file is truncated: {what} needs {needed} bytes at offset {offset}, {available} remain")]
    Truncated {
        /// The field being read.
        what: String,
        /// Its offset in the file.
        offset: usize,
        /// Bytes it needs.
        needed: u64,
        /// Bytes left in the file.
        available: usize,
    },
    /// The file does not start with `GGUF`.
    #[error("not a GGUF file (magic {0:02x?})")]
    BadMagic([u8; 4]),
    /// A GGUF version other than 2 or 3.
    #[error("GGUF version {0} is not supported (2 and 3 are)")]
    Version(u32),
    /// A metadata value or tensor index entry is malformed.
    #[error("GGUF {field}: {why}")]
    Invalid {
        /// The key, tensor or header field.
        field: String,
        /// What is wrong with it.
        why: String,
    },
    /// A metadata key the model needs is absent or has another type.
    #[error("GGUF metadata key {key} is {why}")]
    Metadata {
        /// The key.
        key: String,
        /// `missing`, or the type found.
        why: String,
    },
    /// A tensor is stored in a ggml type this reader does not decode.
    #[error(
        "tensor {tensor} is stored as {dtype}, which this reader does not decode (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q6_K are)"
    )]
    UnsupportedType {
        /// The tensor.
        tensor: String,
        /// The ggml type's name, or its number.
        dtype: String,
    },
}

/// A ggml tensor type this reader knows by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GgmlType {
    /// 32-bit float.
    F32,
    /// IEEE half.
    F16,
    /// bfloat16.
    Bf16,
    /// Blocks of 32: an f16 scale and 32 signed bytes.
    Q8_0,
    /// Blocks of 32: an f16 scale and 32 4-bit values offset by 8.
    Q4_0,
    /// Blocks of 32: an f16 scale, an f16 minimum and 32 4-bit values.
    Q4_1,
    /// Super-blocks of 256: f16 scale and minimum, eight 6-bit sub-block scales and minima, 4-bit values.
    Q4K,
    /// Super-blocks of 256: 6-bit values, sixteen 8-bit sub-block scales, an f16 scale.
    Q6K,
    /// Any other ggml type (its number), readable in the index but not decoded.
    Other(u32),
}

impl GgmlType {
    /// The type with ggml number `n`.
    pub const fn from_u32(n: u32) -> Self {
        match n {
            0 => Self::F32,
            1 => Self::F16,
            2 => Self::Q4_0,
            3 => Self::Q4_1,
            8 => Self::Q8_0,
            12 => Self::Q4K,
            14 => Self::Q6K,
            30 => Self::Bf16,
            other => Self::Other(other),
        }
    }

    /// ggml's name for the type.
    pub fn name(self) -> String {
        let known = match self {
            Self::F32 => "F32",
            Self::F16 => "F16",
            Self::Bf16 => "BF16",
            Self::Q8_0 => "Q8_0",
            Self::Q4_0 => "Q4_0",
            Self::Q4_1 => "Q4_1",
            Self::Q4K => "Q4_K",
            Self::Q6K => "Q6_K",
            Self::Other(n) => {
                return match n {
                    6 => "Q5_0".into(),
                    7 => "Q5_1".into(),
                    9 => "Q8_1".into(),
                    10 => "Q2_K".into(),
                    11 => "Q3_K".into(),
                    12 => "Q4_K".into(),
                    13 => "Q5_K".into(),
                    14 => "Q6_K".into(),
                    15 => "Q8_K".into(),
                    n => format!("ggml type {n}"),
                };
            }
        };
        known.into()
    }

    /// `(elements per block, bytes per block)` for the decoded types.
    pub const fn block(self) -> Option<(usize, usize)> {
        match self {
            Self::F32 => Some((1, 4)),
            Self::F16 | Self::Bf16 => Some((1, 2)),
            Self::Q8_0 => Some((32, 34)),
            Self::Q4_0 => Some((32, 18)),
            Self::Q4_1 => Some((32, 20)),
            Self::Q4K => Some((256, 144)),
            Self::Q6K => Some((256, 210)),
            Self::Other(_) => None,
        }
    }
}

/// One metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    /// An unsigned integer of any width (u8, u16, u32, u64).
    Uint(u64),
    /// A signed integer of any width.
    Int(i64),
    /// A float (f32 or f64).
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A UTF-8 string.
    String(String),
    /// An array of values of one type.
    Array(Vec<Self>),
}

impl MetaValue {
    fn type_name(&self) -> &'static str {
        match self {
            Self::Uint(_) => "an unsigned integer",
            Self::Int(_) => "a signed integer",
            Self::Float(_) => "a float",
            Self::Bool(_) => "a boolean",
            Self::String(_) => "a string",
            Self::Array(_) => "an array",
        }
    }
}

/// One entry of the tensor index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// The tensor's GGUF name (`blk.0.attn_q.weight`, …).
    pub name: String,
    /// Dimensions, innermost first (ggml order).
    pub dims: Vec<usize>,
    /// Storage type.
    pub dtype: GgmlType,
    /// Start of the data, from the start of the file.
    pub start: usize,
    /// Bytes of data (0 for a type this reader cannot size).
    pub size: usize,
}

impl TensorInfo {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.dims.iter().product()
    }

    /// Whether the tensor has no elements (never true for a parsed tensor).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The shape in row-major (PyTorch) order: `dims` reversed.
    pub fn shape(&self) -> Vec<usize> {
        self.dims.iter().rev().copied().collect()
    }
}

/// A parsed GGUF file borrowing its bytes.
#[derive(Debug)]
pub struct GgufFile<'a> {
    bytes: &'a [u8],
    /// GGUF version (2 or 3).
    pub version: u32,
    /// Metadata by key.
    pub metadata: BTreeMap<String, MetaValue>,
    /// Tensor index by name.
    pub tensors: BTreeMap<String, TensorInfo>,
}

/// Most tensors or metadata entries a file may declare (a bound on work before the counts are trusted).
const MAX_ENTRIES: u64 = 1 << 20;
/// Deepest nesting of metadata arrays.
const MAX_ARRAY_DEPTH: usize = 4;

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: u64, what: &dyn Fn() -> String) -> Result<&'a [u8], GgufError> {
        let available = self.bytes.len() - self.pos;
        if n > available as u64 {
            return Err(GgufError::Truncated {
                what: what(),
                offset: self.pos,
                needed: n,
                available,
            });
        }
        let out = &self.bytes[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &dyn Fn() -> String) -> Result<[u8; N], GgufError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N as u64, what)?);
        Ok(a)
    }

    fn u32(&mut self, what: &dyn Fn() -> String) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &dyn Fn() -> String) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn string(&mut self, what: &dyn Fn() -> String) -> Result<String, GgufError> {
        let len = self.u64(what)?;
        let raw = self.take(len, what)?;
        String::from_utf8(raw.to_vec()).map_err(|_| GgufError::Invalid {
            field: what(),
            why: "is not valid UTF-8".into(),
        })
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }
}

/// Bytes one value of metadata type `t` takes at least (to bound array counts before allocating).
const fn min_value_size(t: u32) -> u64 {
    match t {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        8 | 10..=12 => 8,
        9 => 12,
        _ => 1,
    }
}

fn read_value(c: &mut Cursor<'_>, t: u32, key: &str, depth: usize) -> Result<MetaValue, GgufError> {
    let what = || format!("metadata {key}");
    Ok(match t {
        0 => MetaValue::Uint(u64::from(c.array::<1>(&what)?[0])),
        1 => MetaValue::Int(i64::from(i8::from_le_bytes(c.array(&what)?))),
        2 => MetaValue::Uint(u64::from(u16::from_le_bytes(c.array(&what)?))),
        3 => MetaValue::Int(i64::from(i16::from_le_bytes(c.array(&what)?))),
        4 => MetaValue::Uint(u64::from(c.u32(&what)?)),
        5 => MetaValue::Int(i64::from(i32::from_le_bytes(c.array(&what)?))),
        6 => MetaValue::Float(f64::from(f32::from_le_bytes(c.array(&what)?))),
        7 => match c.array::<1>(&what)?[0] {
            0 => MetaValue::Bool(false),
            1 => MetaValue::Bool(true),
            b => {
                return Err(GgufError::Invalid {
                    field: what(),
                    why: format!("boolean byte {b} is neither 0 nor 1"),
                });
            }
        },
        8 => MetaValue::String(c.string(&what)?),
        9 => {
            if depth >= MAX_ARRAY_DEPTH {
                return Err(GgufError::Invalid {
                    field: what(),
                    why: format!("arrays nest deeper than {MAX_ARRAY_DEPTH}"),
                });
            }
            let elem = c.u32(&what)?;
            let count = c.u64(&what)?;
            let need = count.saturating_mul(min_value_size(elem));
            if need > c.remaining() as u64 {
                return Err(GgufError::Truncated {
                    what: format!("metadata {key} ({count} array elements)"),
                    offset: c.pos,
                    needed: need,
                    available: c.remaining(),
                });
            }
            let mut out = Vec::with_capacity(count as usize);
            for _ in 0..count {
                out.push(read_value(c, elem, key, depth + 1)?);
            }
            MetaValue::Array(out)
        }
        10 => MetaValue::Uint(c.u64(&what)?),
        11 => MetaValue::Int(i64::from_le_bytes(c.array(&what)?)),
        12 => MetaValue::Float(f64::from_le_bytes(c.array(&what)?)),
        other => {
            return Err(GgufError::Invalid {
                field: what(),
                why: format!("unknown value type {other}"),
            });
        }
    })
}

impl<'a> GgufFile<'a> {
    /// Parses the header, metadata and tensor index of `bytes`, checking every tensor's extent against the
    /// file.
    ///
    /// # Errors
    /// A [`GgufError`] naming the first bad field, key or tensor.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, GgufError> {
        let mut c = Cursor { bytes, pos: 0 };
        let magic: [u8; 4] = c.array(&|| "magic".into())?;
        if &magic != b"GGUF" {
            return Err(GgufError::BadMagic(magic));
        }
        let version = c.u32(&|| "version".into())?;
        if !(2..=3).contains(&version) {
            return Err(GgufError::Version(version));
        }
        let n_tensors = c.u64(&|| "tensor count".into())?;
        let n_kv = c.u64(&|| "metadata count".into())?;
        for (field, n) in [("tensor count", n_tensors), ("metadata count", n_kv)] {
            if n > MAX_ENTRIES {
                return Err(GgufError::Invalid {
                    field: field.into(),
                    why: format!("{n} is above {MAX_ENTRIES}"),
                });
            }
        }
        let mut metadata = BTreeMap::new();
        for i in 0..n_kv {
            let key = c.string(&|| format!("metadata key {i}"))?;
            let t = c.u32(&|| format!("metadata {key} type"))?;
            let value = read_value(&mut c, t, &key, 0)?;
            if metadata.insert(key.clone(), value).is_some() {
                return Err(GgufError::Invalid {
                    field: format!("metadata {key}"),
                    why: "appears twice".into(),
                });
            }
        }
        let alignment = match metadata.get("general.alignment") {
            None => 32,
            Some(MetaValue::Uint(a)) if a.is_power_of_two() && *a <= 1 << 16 => *a as usize,
            Some(v) => {
                return Err(GgufError::Invalid {
                    field: "metadata general.alignment".into(),
                    why: format!("{v:?} is not a power of two up to 65536"),
                });
            }
        };
        let mut index = Vec::new();
        for i in 0..n_tensors {
            let name = c.string(&|| format!("tensor {i} name"))?;
            let what = || format!("tensor {name}");
            let n_dims = c.u32(&what)?;
            if n_dims == 0 || n_dims > 4 {
                return Err(GgufError::Invalid {
                    field: what(),
                    why: format!("has {n_dims} dimensions (1 to 4 are allowed)"),
                });
            }
            let mut dims = Vec::with_capacity(n_dims as usize);
            let mut elems: u64 = 1;
            for _ in 0..n_dims {
                let d = c.u64(&what)?;
                elems = elems
                    .checked_mul(d)
                    .filter(|&e| d > 0 && e <= 1 << 40)
                    .ok_or_else(|| GgufError::Invalid {
                        field: what(),
                        why: "has a zero dimension or more than 2^40 elements".into(),
                    })?;
                dims.push(d as usize);
            }
            let dtype = GgmlType::from_u32(c.u32(&what)?);
            let offset = c.u64(&what)?;
            index.push((name, dims, dtype, offset));
        }
        let data_start = c.pos.next_multiple_of(alignment);
        if data_start > bytes.len() && n_tensors > 0 {
            return Err(GgufError::Truncated {
                what: "tensor data section".into(),
                offset: c.pos,
                needed: (data_start - c.pos) as u64,
                available: c.remaining(),
            });
        }
        let mut tensors = BTreeMap::new();
        for (name, dims, dtype, offset) in index {
            let invalid = |why: String| GgufError::Invalid {
                field: format!("tensor {name}"),
                why,
            };
            if !offset.is_multiple_of(alignment as u64) {
                return Err(invalid(format!(
                    "offset {offset} is not a multiple of {alignment}"
                )));
            }
            let size = match dtype.block() {
                None => 0,
                Some((per_block, block_bytes)) => {
                    if dims[0] % per_block != 0 {
                        return Err(invalid(format!(
                            "innermost dimension {} is not a multiple of the {} block of {per_block}",
                            dims[0],
                            dtype.name()
                        )));
                    }
                    dims.iter().product::<usize>() / per_block * block_bytes
                }
            };
            let start = (data_start as u64).checked_add(offset);
            let end = start.and_then(|s| s.checked_add(size as u64));
            match (start, end) {
                (Some(s), Some(e)) if e <= bytes.len() as u64 => {
                    let info = TensorInfo {
                        name: name.clone(),
                        dims,
                        dtype,
                        start: s as usize,
                        size,
                    };
                    if tensors.insert(name.clone(), info).is_some() {
                        return Err(invalid("appears twice".into()));
                    }
                }
                _ => {
                    return Err(GgufError::Truncated {
                        what: format!("tensor {name} data"),
                        offset: data_start.saturating_add(offset as usize),
                        needed: size as u64,
                        available: bytes
                            .len()
                            .saturating_sub(data_start.saturating_add(offset as usize)),
                    });
                }
            }
        }
        Ok(Self {
            bytes,
            version,
            metadata,
            tensors,
        })
    }

    /// A metadata value, or [`GgufError::Metadata`] naming the missing key.
    ///
    /// # Errors
    /// [`GgufError::Metadata`] when the key is absent.
    pub fn get(&self, key: &str) -> Result<&MetaValue, GgufError> {
        self.metadata.get(key).ok_or_else(|| GgufError::Metadata {
            key: key.into(),
            why: "missing".into(),
        })
    }

    /// An unsigned integer value (any width; a non-negative signed value is accepted).
    ///
    /// # Errors
    /// [`GgufError::Metadata`] when absent or of another type.
    pub fn uint(&self, key: &str) -> Result<u64, GgufError> {
        match self.get(key)? {
            MetaValue::Uint(v) => Ok(*v),
            MetaValue::Int(v) if *v >= 0 => Ok(*v as u64),
            other => Err(wrong_type(key, other)),
        }
    }

    /// A float value (an integer is accepted).
    ///
    /// # Errors
    /// [`GgufError::Metadata`] when absent or of another type.
    pub fn float(&self, key: &str) -> Result<f64, GgufError> {
        match self.get(key)? {
            MetaValue::Float(v) => Ok(*v),
            MetaValue::Uint(v) => Ok(*v as f64),
            MetaValue::Int(v) => Ok(*v as f64),
            other => Err(wrong_type(key, other)),
        }
    }

    /// A string value.
    ///
    /// # Errors
    /// [`GgufError::Metadata`] when absent or of another type.
    pub fn string(&self, key: &str) -> Result<&str, GgufError> {
        match self.get(key)? {
            MetaValue::String(s) => Ok(s),
            other => Err(wrong_type(key, other)),
        }
    }

    /// An array value.
    ///
    /// # Errors
    /// [`GgufError::Metadata`] when absent or of another type.
    pub fn array(&self, key: &str) -> Result<&[MetaValue], GgufError> {
        match self.get(key)? {
            MetaValue::Array(a) => Ok(a),
            other => Err(wrong_type(key, other)),
        }
    }

    /// An array of strings.
    ///
    /// # Errors
    /// [`GgufError::Metadata`] when absent or not an array of strings.
    pub fn strings(&self, key: &str) -> Result<Vec<&str>, GgufError> {
        self.array(key)?
            .iter()
            .map(|v| match v {
                MetaValue::String(s) => Ok(s.as_str()),
                other => Err(wrong_type(key, other)),
            })
            .collect()
    }

    /// The raw bytes of a tensor (its extent was checked by [`parse`](Self::parse)).
    ///
    /// # Errors
    /// [`GgufError::Metadata`] (key `tensor NAME`) when the tensor is absent,
    /// [`GgufError::UnsupportedType`] when its size is unknown.
    pub fn raw(&self, name: &str) -> Result<(&TensorInfo, &'a [u8]), GgufError> {
        let info = self.tensors.get(name).ok_or_else(|| GgufError::Metadata {
            key: format!("tensor {name}"),
            why: "missing".into(),
        })?;
        if info.dtype.block().is_none() {
            return Err(GgufError::UnsupportedType {
                tensor: name.into(),
                dtype: info.dtype.name(),
            });
        }
        Ok((info, &self.bytes[info.start..info.start + info.size]))
    }

    /// A tensor decoded to f32, row-major in [`TensorInfo::shape`] order.
    ///
    /// # Errors
    /// Those of [`raw`](Self::raw).
    pub fn tensor_f32(&self, name: &str) -> Result<(&TensorInfo, Vec<f32>), GgufError> {
        let (info, raw) = self.raw(name)?;
        let values = dequantize(info.dtype, raw, info.len()).map_err(|why| GgufError::Invalid {
            field: format!("tensor {name}"),
            why,
        })?;
        Ok((info, values))
    }
}

fn wrong_type(key: &str, found: &MetaValue) -> GgufError {
    GgufError::Metadata {
        key: key.into(),
        why: format!("{}, which is not the type expected", found.type_name()),
    }
}

/// Decodes `n` elements of type `dtype` from `raw`.
///
/// # Errors
/// A message when the type is not decoded or `raw` does not hold exactly `n` elements.
pub fn dequantize(dtype: GgmlType, raw: &[u8], n: usize) -> Result<Vec<f32>, String> {
    let (per_block, block_bytes) = dtype
        .block()
        .ok_or_else(|| format!("{} is not decoded", dtype.name()))?;
    if !n.is_multiple_of(per_block) || raw.len() != n / per_block * block_bytes {
        return Err(format!(
            "{} bytes do not hold {n} elements of {}",
            raw.len(),
            dtype.name()
        ));
    }
    let mut out = Vec::with_capacity(n);
    let blocks = raw.chunks_exact(block_bytes);
    match dtype {
        GgmlType::F32 => out.extend(blocks.map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
        GgmlType::F16 => out.extend(blocks.map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])))),
        GgmlType::Bf16 => {
            out.extend(blocks.map(|b| f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16)));
        }
        GgmlType::Q8_0 => {
            for b in blocks {
                let d = f16_to_f32(u16::from_le_bytes([b[0], b[1]]));
                out.extend(b[2..].iter().map(|&q| f32::from(q as i8) * d));
            }
        }
        GgmlType::Q4_0 => {
            for b in blocks {
                let d = f16_to_f32(u16::from_le_bytes([b[0], b[1]]));
                let qs = &b[2..];
                out.extend(qs.iter().map(|&q| (f32::from(q & 0xf) - 8.0) * d));
                out.extend(qs.iter().map(|&q| (f32::from(q >> 4) - 8.0) * d));
            }
        }
        GgmlType::Q4_1 => {
            for b in blocks {
                let d = f16_to_f32(u16::from_le_bytes([b[0], b[1]]));
                let m = f16_to_f32(u16::from_le_bytes([b[2], b[3]]));
                let qs = &b[4..];
                out.extend(qs.iter().map(|&q| f32::from(q & 0xf) * d + m));
                out.extend(qs.iter().map(|&q| f32::from(q >> 4) * d + m));
            }
        }
        GgmlType::Q4K => {
            for b in blocks {
                let d = f16_to_f32(u16::from_le_bytes([b[0], b[1]]));
                let dmin = f16_to_f32(u16::from_le_bytes([b[2], b[3]]));
                let scales = &b[4..16];
                for (j, qs) in b[16..].chunks_exact(32).enumerate() {
                    let (sc1, m1) = scale_min_k4(2 * j, scales);
                    let (sc2, m2) = scale_min_k4(2 * j + 1, scales);
                    let (d1, m1) = (d * f32::from(sc1), dmin * f32::from(m1));
                    let (d2, m2) = (d * f32::from(sc2), dmin * f32::from(m2));
                    out.extend(qs.iter().map(|&q| d1 * f32::from(q & 0xf) - m1));
                    out.extend(qs.iter().map(|&q| d2 * f32::from(q >> 4) - m2));
                }
            }
        }
        GgmlType::Q6K => {
            for b in blocks {
                let d = f16_to_f32(u16::from_le_bytes([b[208], b[209]]));
                for half in 0..2 {
                    let ql = &b[half * 64..half * 64 + 64];
                    let qh = &b[128 + half * 32..128 + half * 32 + 32];
                    let sc = &b[192 + half * 8..192 + half * 8 + 8];
                    let mut y = [0f32; 128];
                    for l in 0..32 {
                        let is = l / 16;
                        let q =
                            |low: u8, shift: u8| f32::from((low | (((qh[l] >> shift) & 3) << 4)) as i8 - 32);
                        let s = |k: usize| d * f32::from(sc[is + k] as i8);
                        y[l] = s(0) * q(ql[l] & 0xf, 0);
                        y[l + 32] = s(2) * q(ql[l + 32] & 0xf, 2);
                        y[l + 64] = s(4) * q(ql[l] >> 4, 4);
                        y[l + 96] = s(6) * q(ql[l + 32] >> 4, 6);
                    }
                    out.extend_from_slice(&y);
                }
            }
        }
        GgmlType::Other(_) => unreachable!("no block size"),
    }
    Ok(out)
}

/// The 6-bit scale and minimum of sub-block `j` (0..8) of a Q4_K super-block's 12 packed bytes.
fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// IEEE 754 binary16 to binary32 (exact).
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let mant = u32::from(h & 0x3ff);
    let bits = match (exp, mant) {
        (0, 0) => sign,
        (0, m) => {
            // Subnormal: value = m · 2^-24.
            let v = m as f32 * f32::from_bits(0x3380_0000); // 2^-24
            return if sign != 0 { -v } else { v };
        }
        (0x1f, m) => sign | 0x7f80_0000 | (m << 13),
        (e, m) => sign | ((e + 112) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

/// binary32 to binary16, rounding to nearest even (finite inputs in range; used to re-quantize weights).
pub fn f32_to_f16(x: f32) -> u16 {
    let bits = x.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exp = ((bits >> 23) & 0xff) as i32;
    let mant = bits & 0x7f_ffff;
    if exp == 0xff {
        return sign | 0x7c00 | if mant != 0 { 0x200 } else { 0 };
    }
    let e = exp - 127 + 15;
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    if e <= 0 {
        if e < -10 {
            return sign;
        }
        let m = mant | 0x80_0000;
        let shift = (14 - e) as u32;
        let half = 1u32 << (shift - 1);
        let rounded = m + half - 1 + ((m >> shift) & 1);
        return sign | (rounded >> shift) as u16;
    }
    let rounded = mant + 0xfff + ((mant >> 13) & 1);
    let (e, m) = if rounded & 0x80_0000 != 0 {
        (e + 1, 0)
    } else {
        (e, rounded >> 13)
    };
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    sign | ((e as u16) << 10) | m as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A GGUF v3 file with the given metadata bytes and tensors `(name, dims, type, data)`.
    pub(crate) fn build(kv: &[(&str, u32, Vec<u8>)], tensors: &[(&str, Vec<u64>, u32, Vec<u8>)]) -> Vec<u8> {
        let s = |v: &mut Vec<u8>, x: &str| {
            v.extend((x.len() as u64).to_le_bytes());
            v.extend(x.as_bytes());
        };
        let mut f = b"GGUF".to_vec();
        f.extend(3u32.to_le_bytes());
        f.extend((tensors.len() as u64).to_le_bytes());
        f.extend((kv.len() as u64).to_le_bytes());
        for (k, t, v) in kv {
            s(&mut f, k);
            f.extend(t.to_le_bytes());
            f.extend(v);
        }
        let mut offset = 0u64;
        let mut data = Vec::new();
        for (name, dims, t, bytes) in tensors {
            s(&mut f, name);
            f.extend((dims.len() as u32).to_le_bytes());
            for d in dims {
                f.extend(d.to_le_bytes());
            }
            f.extend(t.to_le_bytes());
            f.extend(offset.to_le_bytes());
            data.extend(bytes);
            while !data.len().is_multiple_of(32) {
                data.push(0);
            }
            offset = data.len() as u64;
        }
        while !f.len().is_multiple_of(32) {
            f.push(0);
        }
        f.extend(data);
        f
    }

    fn h(x: f32) -> [u8; 2] {
        f32_to_f16(x).to_le_bytes()
    }

    #[test]
    fn f16_conversions_are_exact_where_representable() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert!(f16_to_f32(0x7c00).is_infinite());
        for x in [
            0.0f32,
            1.0,
            -0.5,
            0.099_975_586,
            65504.0,
            6.1035156e-5,
            5.9604645e-8,
        ] {
            assert_eq!(f16_to_f32(f32_to_f16(x)), x, "{x}");
        }
        // 1 + 2^-11 is halfway between 1 and the next f16: ties go to even (1.0).
        assert_eq!(f16_to_f32(f32_to_f16(1.0 + 2f32.powi(-11))), 1.0);
        assert_eq!(
            f16_to_f32(f32_to_f16(1.0 + 3.0 * 2f32.powi(-11))),
            1.0 + 2f32.powi(-9)
        );
    }

    #[test]
    fn block_formats_decode_to_hand_computed_values() {
        // Q4_1: d = 0.5, m = -1; byte j holds (low = j, high = 15 - j).
        let mut q41 = Vec::new();
        q41.extend(h(0.5));
        q41.extend(h(-1.0));
        q41.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
        let v = dequantize(GgmlType::Q4_1, &q41, 32).unwrap();
        let expect: Vec<f32> = (0..16)
            .map(|j| j as f32 * 0.5 - 1.0)
            .chain((0..16).map(|j| (15 - j) as f32 * 0.5 - 1.0))
            .collect();
        assert_eq!(v, expect);
        // Q4_0: d = 0.25; byte j holds (low = j, high = j); value (q − 8)·d.
        let mut q40 = h(0.25).to_vec();
        q40.extend((0..16u8).map(|j| j | (j << 4)));
        let v = dequantize(GgmlType::Q4_0, &q40, 32).unwrap();
        assert_eq!(v[0], -2.0);
        assert_eq!(v[8], 0.0);
        assert_eq!(v[15], 1.75);
        assert_eq!(v[16 + 3], -1.25);
        // Q8_0: d = 0.125, q = -16..16.
        let mut q80 = h(0.125).to_vec();
        q80.extend((-16i8..16).map(|q| q as u8));
        let v = dequantize(GgmlType::Q8_0, &q80, 32).unwrap();
        assert_eq!(v[0], -2.0);
        assert_eq!(v[31], 1.875);
        // BF16 1.5 = 0x3fc0; F16 −0.5 = 0xb800.
        assert_eq!(dequantize(GgmlType::Bf16, &[0xc0, 0x3f], 1).unwrap(), vec![1.5]);
        assert_eq!(dequantize(GgmlType::F16, &[0x00, 0xb8], 1).unwrap(), vec![-0.5]);
        assert!(dequantize(GgmlType::Q4_1, &q41[..19], 32).is_err());
        assert!(dequantize(GgmlType::Other(13), &q41, 32).is_err());
    }

    #[test]
    fn k_quants_match_the_gguf_python_package() {
        // Byte i of the block is (37 i + 11) mod 256, with the f16 scales overwritten; the expected values
        // were computed by PyPI's gguf 0.17.1 (`gguf.quants.dequantize`), llama.cpp's Python reference:
        // elements [0, 1, 31, 32, 63, 64, 100, 127, 128, 200, 255], their sum and sum of squares.
        let block = |n: usize, scales: &[(usize, f32)]| {
            let mut b: Vec<u8> = (0..n).map(|i| ((i * 37 + 11) % 256) as u8).collect();
            for &(pos, v) in scales {
                b[pos..pos + 2].copy_from_slice(&h(v));
            }
            b
        };
        let idx = [0, 1, 31, 32, 63, 64, 100, 127, 128, 200, 255];
        let cases = [
            (
                GgmlType::Q4K,
                block(144, &[(0, 0.03125), (2, 0.0078125)]),
                [
                    10.2578125, -0.3984375, 5.4140625, 0.4375, 1.4375, 13.6171875, 3.234375, 2.796875,
                    13.3125, 4.4609375, 1.7890625,
                ],
                1767.25,
                24471.259765625,
            ),
            (
                GgmlType::Q6K,
                block(210, &[(208, 0.0625)]),
                [
                    -89.4375, 106.0, -6.0, 14.4375, -36.25, -190.0, 157.6875, 93.75, -21.9375, 68.0625, -3.75,
                ],
                288.25,
                1851172.890625,
            ),
        ];
        for (t, bytes, expect, sum, sum_sq) in cases {
            let v = dequantize(t, &bytes, 256).unwrap();
            let picked: Vec<f32> = idx.iter().map(|&i| v[i]).collect();
            assert_eq!(picked, expect, "{t:?}");
            let s: f64 = v.iter().map(|&x| f64::from(x)).sum();
            let s2: f64 = v.iter().map(|&x| f64::from(x).powi(2)).sum();
            assert!(
                (s - sum).abs() < 1e-6 && (s2 - sum_sq).abs() < 1e-3,
                "{t:?}: {s} {s2}"
            );
        }
    }

    #[test]
    fn parses_a_small_file_and_reads_its_tensors() {
        let f32s: Vec<u8> = [1.0f32, -2.0, 3.5, 0.25, 7.0, 8.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let mut arch = 5u64.to_le_bytes().to_vec();
        arch.extend(b"llama");
        let mut arr = 8u32.to_le_bytes().to_vec();
        arr.extend(2u64.to_le_bytes());
        for t in ["a", "bc"] {
            arr.extend((t.len() as u64).to_le_bytes());
            arr.extend(t.as_bytes());
        }
        let file = build(
            &[
                ("general.architecture", 8, arch),
                ("llama.block_count", 4, 30u32.to_le_bytes().to_vec()),
                ("tok", 9, arr),
            ],
            &[("w", vec![3, 2], 0, f32s)],
        );
        let g = GgufFile::parse(&file).unwrap();
        assert_eq!(g.string("general.architecture").unwrap(), "llama");
        assert_eq!(g.uint("llama.block_count").unwrap(), 30);
        assert_eq!(g.strings("tok").unwrap(), vec!["a", "bc"]);
        let (info, v) = g.tensor_f32("w").unwrap();
        assert_eq!(info.shape(), vec![2, 3]);
        assert_eq!(v, vec![1.0, -2.0, 3.5, 0.25, 7.0, 8.0]);
        assert!(
            matches!(g.uint("general.architecture"), Err(GgufError::Metadata { key, .. }) if key == "general.architecture")
        );

        // Every truncation of the file is a typed error, never a panic (the last 8 bytes are padding after
        // the tensor's 24 bytes, which a reader does not need).
        assert!(GgufFile::parse(&file[..file.len() - 8]).is_ok());
        for cut in 0..file.len() - 8 {
            assert!(GgufFile::parse(&file[..cut]).is_err(), "cut at {cut} parsed");
        }
    }

    #[test]
    fn hostile_counts_and_offsets_are_refused_before_allocation() {
        // An array claiming 2^60 strings in a tiny file.
        let mut arr = 8u32.to_le_bytes().to_vec();
        arr.extend((1u64 << 60).to_le_bytes());
        let file = build(&[("tok", 9, arr)], &[]);
        assert!(
            matches!(GgufFile::parse(&file), Err(GgufError::Truncated { what, .. }) if what.contains("tok"))
        );
        // A tensor whose data runs past the end of the file.
        let file = build(&[], &[("w", vec![1 << 30], 0, vec![0; 4])]);
        assert!(
            matches!(GgufFile::parse(&file), Err(GgufError::Truncated { what, .. }) if what.contains("tensor w"))
        );
        // Dimensions whose product overflows.
        let file = build(&[], &[("w", vec![1 << 32, 1 << 32], 0, vec![])]);
        assert!(
            matches!(GgufFile::parse(&file), Err(GgufError::Invalid { field, .. }) if field == "tensor w")
        );
        // A Q4_1 row that is not whole blocks.
        let file = build(&[], &[("w", vec![31], 3, vec![0; 20])]);
        assert!(
            matches!(GgufFile::parse(&file), Err(GgufError::Invalid { field, .. }) if field == "tensor w")
        );
        // A type without a decoder (Q5_K) is indexed but refused by name when read.
        let file = build(&[], &[("k", vec![256], 13, vec![])]);
        let g = GgufFile::parse(&file).unwrap();
        assert!(
            matches!(g.tensor_f32("k"), Err(GgufError::UnsupportedType { tensor, dtype }) if tensor == "k" && dtype == "Q5_K")
        );
        assert!(matches!(
            GgufFile::parse(b"GGML\x03\0\0\0"),
            Err(GgufError::BadMagic(_))
        ));
    }
}
