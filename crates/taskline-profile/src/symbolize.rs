//! Symbolization of a profile's addresses in the profiled process: function
//! names (demangled), source file and line, inlined functions (through
//! `blazesym`), and the executable mappings they fall in (from
//! `/proc/self/maps`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use taskline_core::{CodeFrame, CodeMapping};

use crate::profile::Profile;

/// What names a profile's addresses: for the pprof writer, and for the
/// trace's samples ([`taskline_core::CpuSamples`]).
#[derive(Debug, Default)]
pub(crate) struct Symbols {
    /// Frames per address, innermost (most inlined) first; absent or empty
    /// when unknown.
    pub frames: HashMap<u64, Vec<CodeFrame>>,
    /// The executable mappings, by start address.
    pub mappings: Vec<CodeMapping>,
}

impl Symbols {
    /// The index in `mappings` of the one holding `addr`.
    pub fn mapping_of(&self, addr: u64) -> Option<usize> {
        CodeMapping::index_of(&self.mappings, addr)
    }
}

/// A symbolizer that keeps the parsed ELF and DWARF of every file it read
/// (memory in proportion to their debug info), so that repeated profiles
/// (the collector's) do not parse the executable again. Not `Send`: one per
/// thread that symbolizes repeatedly.
#[derive(Default)]
pub(crate) struct SymbolCache {
    #[cfg(target_os = "linux")]
    symbolizer: Option<blazesym::symbolize::Symbolizer>,
}

/// Symbolizes every address of `profile` (with a fresh cache).
pub(crate) fn symbolize(profile: &Profile) -> Symbols {
    symbolize_with(&mut SymbolCache::default(), profile)
}

/// Symbolizes every address of `profile` through `cache`.
pub(crate) fn symbolize_with(cache: &mut SymbolCache, profile: &Profile) -> Symbols {
    let mut addrs: Vec<u64> = profile
        .samples
        .iter()
        .flat_map(|s| s.stack.iter().copied())
        .collect();
    addrs.sort_unstable();
    addrs.dedup();
    symbolize_addrs(cache, &addrs)
}

/// The source frames of `addrs` (sorted, distinct) and the executable
/// mappings.
pub(crate) fn symbolize_addrs(cache: &mut SymbolCache, addrs: &[u64]) -> Symbols {
    Symbols {
        frames: frames(cache, addrs),
        mappings: mappings(),
    }
}

#[cfg(target_os = "linux")]
fn frames(cache: &mut SymbolCache, addrs: &[u64]) -> HashMap<u64, Vec<CodeFrame>> {
    use blazesym::symbolize::source::{Process, Source};
    use blazesym::symbolize::{CodeInfo, Input, Symbolized, Symbolizer};

    let mut out = HashMap::new();
    if addrs.is_empty() {
        return out;
    }
    let symbolizer = cache.symbolizer.get_or_insert_with(|| {
        Symbolizer::builder()
            .enable_code_info(true)
            .enable_inlined_fns(true)
            .enable_demangling(true)
            .build()
    });
    let mut process = Process::new(blazesym::Pid::Slf);
    // Symbolic paths from /proc/self/maps: /proc/self/map_files may need
    // privileges in some containers.
    process.map_files = false;
    process.perf_map = false;
    let Ok(symbolized) = symbolizer.symbolize(&Source::Process(process), Input::AbsAddr(addrs))
    else {
        return out;
    };
    // Names and files shared by many frames are stored once.
    let mut names: HashSet<Arc<str>> = HashSet::new();
    let mut intern = |s: &str| -> Arc<str> {
        if let Some(a) = names.get(s) {
            return Arc::clone(a);
        }
        let a: Arc<str> = Arc::from(s);
        names.insert(Arc::clone(&a));
        a
    };
    let mut frame = |function: &str, info: Option<&CodeInfo<'_>>| {
        let (file, line) = info.map_or((String::new(), 0), |c| {
            (c.to_path().display().to_string(), c.line.unwrap_or(0))
        });
        CodeFrame {
            function: intern(function),
            file: intern(&file),
            line,
        }
    };
    for (&addr, sym) in addrs.iter().zip(symbolized) {
        let Symbolized::Sym(sym) = sym else { continue };
        // blazesym lists the outer function first, each entry with the
        // location inside that function; pprof wants the innermost first.
        let mut frames = Vec::with_capacity(1 + sym.inlined.len());
        frames.push(frame(&sym.name, sym.code_info.as_deref()));
        for inl in sym.inlined.iter() {
            frames.push(frame(&inl.name, inl.code_info.as_ref()));
        }
        frames.reverse();
        out.insert(addr, frames);
    }
    out
}

#[cfg(not(target_os = "linux"))]
fn frames(_cache: &mut SymbolCache, _addrs: &[u64]) -> HashMap<u64, Vec<CodeFrame>> {
    HashMap::new()
}

/// The executable file mappings of this process, by start address.
fn mappings() -> Vec<CodeMapping> {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return Vec::new();
    };
    let mut out: Vec<CodeMapping> = maps.lines().filter_map(parse_maps_line).collect();
    out.sort_by_key(|m| m.start);
    out
}

/// `start-limit perms offset dev inode path` for an executable mapping.
fn parse_maps_line(line: &str) -> Option<CodeMapping> {
    let mut parts = line.split_ascii_whitespace();
    let range = parts.next()?;
    let perms = parts.next()?;
    let offset = parts.next()?;
    let _dev = parts.next()?;
    let _inode = parts.next()?;
    let file = parts.collect::<Vec<_>>().join(" ");
    if !perms.contains('x') {
        return None;
    }
    let (start, limit) = range.split_once('-')?;
    Some(CodeMapping {
        start: u64::from_str_radix(start, 16).ok()?,
        limit: u64::from_str_radix(limit, 16).ok()?,
        offset: u64::from_str_radix(offset, 16).ok()?,
        path: Arc::from(file),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines() {
        let m =
            parse_maps_line("55d0c6a00000-55d0c6b00000 r-xp 00001000 08:01 123 /usr/bin/my app")
                .expect("executable");
        assert_eq!(
            m,
            CodeMapping {
                start: 0x55d0_c6a0_0000,
                limit: 0x55d0_c6b0_0000,
                offset: 0x1000,
                path: "/usr/bin/my app".into()
            }
        );
        assert_eq!(parse_maps_line("7f00-7f10 rw-p 00000000 00:00 0"), None);
        let symbols = Symbols {
            frames: HashMap::new(),
            mappings: vec![m.clone()],
        };
        assert_eq!(symbols.mapping_of(0x55d0_c6a0_0010), Some(0));
        assert_eq!(symbols.mapping_of(0x55d0_c6b0_0000), None);
        assert_eq!(symbols.mapping_of(0x10), None);
    }
}
