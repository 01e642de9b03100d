//! A firmware ZIP, checked in memory: FireFly's rules (its messages, its order) and the
//! limits that keep a hostile archive harmless.
//!
//! Nothing is extracted: each member is streamed through SHA-256 with its size counted as
//! it inflates (a member's declared size is not trusted), so no name ever becomes a path
//! and no archive can fill a disk or the memory. FireFly's function extracted everything
//! to `/tmp` by name (an absolute name escaped it) with no limits at all.

use ring::digest::{Context, SHA256};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::io::Read;

/// What an archive may be. Every real FireFly build fits with room to spare: its ZIP is
/// arduino-cli's whole output directory (about ten members: the `.elf`, the `.map`, a
/// merged image as large as the flash, 16 MiB at most on FireFly's boards) plus the
/// LittleFS images (`config.bin`, `ui.bin`), which are mostly 0xFF and inflate several
/// hundred times over, so there is deliberately no ratio limit.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The ZIP itself (read into memory).
    pub zip_bytes: usize,
    pub entries: usize,
    /// One member, inflated.
    pub member_bytes: u64,
    /// Every member together, inflated.
    pub total_bytes: u64,
    /// `manifest.json`, which is parsed.
    pub manifest_bytes: u64,
}

impl Limits {
    pub const FIREFLY: Limits = Limits {
        zip_bytes: 48 << 20,
        entries: 64,
        member_bytes: 32 << 20,
        total_bytes: 128 << 20,
        manifest_bytes: 1 << 20,
    };
}

/// The fields a manifest must have, in FireFly's order (its messages name the first
/// missing one); every one but `files` is a string.
pub const REQUIRED: [&str; 10] = [
    "class",
    "product_id",
    "product_hex",
    "firmware_type",
    "application",
    "branch",
    "version",
    "commit",
    "created",
    "files",
];

/// A ZIP that passed.
#[derive(Debug, Clone)]
pub struct Checked {
    pub manifest: Map<String, Value>,
    /// The partition table's offsets by partition name.
    pub partition_offsets: BTreeMap<String, u64>,
    /// The first `*.ino.bin` of the manifest's files.
    pub main_binary: Option<String>,
}

/// A ZIP that did not: FireFly's message, and the manifest when it was read (the ERROR
/// record is filed under what it names).
#[derive(Debug, Clone)]
pub struct Invalid {
    pub message: String,
    pub manifest: Option<Value>,
}

fn invalid(message: impl Into<String>) -> Invalid {
    Invalid {
        message: message.into(),
        manifest: None,
    }
}

const MIB: u64 = 1 << 20;

/// Checks a firmware ZIP.
pub fn check(zip: &[u8], limits: &Limits) -> Result<Checked, Invalid> {
    if zip.len() > limits.zip_bytes {
        return Err(invalid(format!(
            "ZIP is larger than {} MiB",
            limits.zip_bytes as u64 / MIB
        )));
    }
    // Python's zipfile says this of anything that is not a ZIP; FireFly's record shows it.
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip))
        .map_err(|_| invalid("File is not a zip file"))?;
    if archive.len() > limits.entries {
        return Err(invalid(format!(
            "ZIP has {} entries; at most {} are accepted",
            archive.len(),
            limits.entries
        )));
    }
    // Every name first, before any member is read.
    let mut names: Vec<String> = Vec::with_capacity(archive.len());
    for i in 0..archive.len() {
        let member = archive
            .by_index_raw(i)
            .map_err(|e| invalid(format!("ZIP entry {i} cannot be read: {e}")))?;
        let name = member
            .name()
            .map_err(|e| invalid(format!("ZIP entry {i} has an unreadable name: {e}")))?
            .into_owned();
        if member.is_dir() || name.ends_with('/') {
            return Err(invalid(format!("ZIP entry '{name}' is a directory")));
        }
        if !safe_name(&name) || member.enclosed_name().is_none() {
            return Err(invalid(format!("Unsafe ZIP entry name: '{name}'")));
        }
        if member.size() > limits.member_bytes {
            return Err(invalid(format!(
                "ZIP member '{name}' is larger than {} MiB",
                limits.member_bytes / MIB
            )));
        }
        if names.contains(&name) {
            return Err(invalid(format!("ZIP lists '{name}' twice")));
        }
        names.push(name);
    }
    let mut total = 0u64;
    let Some(index) = names.iter().position(|n| n == "manifest.json") else {
        return Err(invalid("manifest.json missing"));
    };
    let manifest_bytes = read_member(
        &mut archive,
        index,
        limits.manifest_bytes.min(limits.member_bytes),
        &mut total,
        true,
    )?
    .1;
    let manifest: Value = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| invalid(format!("manifest.json is not valid JSON: {e}")))?;
    let with_manifest = |message: String| Invalid {
        message,
        manifest: Some(manifest.clone()),
    };
    let Value::Object(fields) = &manifest else {
        return Err(with_manifest(
            "manifest.json must hold a JSON object".into(),
        ));
    };
    let files = validate_manifest(fields).map_err(with_manifest)?;

    // Every listed file present and as the manifest hashes it; nothing else beside them.
    let mut partitions = None;
    for (name, sha256) in &files {
        let Some(index) = names.iter().position(|n| n == name) else {
            return Err(with_manifest(format!("Missing file: {name}")));
        };
        let keep = name.ends_with(".partitions.bin");
        let (digest, bytes) =
            read_member(&mut archive, index, limits.member_bytes, &mut total, keep)
                .map_err(|e| with_manifest(e.message))?;
        if total > limits.total_bytes {
            return Err(with_manifest(format!(
                "ZIP expands to more than {} MiB",
                limits.total_bytes / MIB
            )));
        }
        if digest != *sha256 {
            return Err(with_manifest(format!("SHA256 mismatch for {name}")));
        }
        if keep && partitions.is_none() {
            partitions = Some(bytes);
        }
    }
    if let Some(extra) = names
        .iter()
        .find(|n| *n != "manifest.json" && !files.iter().any(|(f, _)| f == *n))
    {
        return Err(with_manifest(format!(
            "ZIP member '{extra}' is not listed in the manifest's files"
        )));
    }
    let main_binary = files
        .iter()
        .map(|(n, _)| n)
        .find(|n| n.ends_with(".ino.bin"))
        .cloned();
    Ok(Checked {
        manifest: fields.clone(),
        partition_offsets: partitions
            .as_deref()
            .map(partition_offsets)
            .unwrap_or_default(),
        main_binary,
    })
}

/// Members a release never publishes (FireFly's `EXCLUDE_FROM_OTA`): the device's own
/// configuration image and the manifest.
pub const NOT_PUBLISHED: [&str; 2] = ["config.bin", "manifest.json"];

/// What a release publishes of a ZIP, judged before anything is: the ZIP passes every rule
/// of [`check`] again (names, limits, each listed file's SHA-256, nothing unlisted) and its
/// manifest lists exactly the record's `files`. The files to publish, `(name, sha256)`,
/// in the manifest's order. FireFly's release inflated each member before asking whether
/// the manifest listed it, and failed half way on a directory entry.
pub fn publishable(
    zip: &[u8],
    record_files: &[(String, String)],
    limits: &Limits,
) -> Result<Vec<(String, String)>, String> {
    let checked = check(zip, limits).map_err(|e| e.message)?;
    let files = validate_manifest(&checked.manifest)?;
    let mut theirs = files.clone();
    let mut ours = record_files.to_vec();
    theirs.sort();
    ours.sort();
    if theirs != ours {
        return Err("the ZIP's manifest does not list the record's files".into());
    }
    Ok(files
        .into_iter()
        .filter(|(n, _)| !NOT_PUBLISHED.contains(&n.as_str()))
        .collect())
}

/// One member's bytes, inflated within `limits` and checked against `sha256` again.
pub fn member(zip: &[u8], name: &str, sha256: &str, limits: &Limits) -> Result<Vec<u8>, String> {
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(zip)).map_err(|_| "File is not a zip file")?;
    let index = archive
        .index_for_name(name)
        .ok_or_else(|| format!("Missing file: {name}"))?;
    let mut total = 0;
    let (digest, bytes) = read_member(&mut archive, index, limits.member_bytes, &mut total, true)
        .map_err(|e| e.message)?;
    if digest != sha256 {
        return Err(format!("SHA256 mismatch for {name}"));
    }
    Ok(bytes)
}

/// FireFly's schema checks, in its order and words, and then the types (FireFly's
/// function failed on a non-string field while filing the error, leaving the ZIP in
/// `processing/` with no record). The files as `(name, sha256)`.
fn validate_manifest(m: &Map<String, Value>) -> Result<Vec<(String, String)>, String> {
    for field in REQUIRED {
        if !m.contains_key(field) {
            return Err(format!("Manifest missing required field: {field}"));
        }
    }
    for field in &REQUIRED[..REQUIRED.len() - 1] {
        if !m[*field].is_string() {
            return Err(format!("Manifest field '{field}' must be a string"));
        }
    }
    let Value::Array(entries) = &m["files"] else {
        return Err("Manifest 'files' must be an array".into());
    };
    let mut files: Vec<(String, String)> = Vec::with_capacity(entries.len());
    for entry in entries {
        let (Some(name), Some(sha256)) = (entry.get("name"), entry.get("sha256")) else {
            return Err("Each file entry must contain 'name' and 'sha256'".into());
        };
        let (Some(name), Some(sha256)) = (name.as_str(), sha256.as_str()) else {
            return Err("Each file entry's 'name' and 'sha256' must be strings".into());
        };
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("Invalid SHA256 for {name}"));
        }
        if !safe_name(name) {
            return Err(format!("Unsafe file name in the manifest: '{name}'"));
        }
        if files.iter().any(|(n, _)| n == name) {
            return Err(format!("Manifest lists {name} twice"));
        }
        files.push((name.to_owned(), sha256.to_owned()));
    }
    if !files.iter().any(|(n, _)| n.ends_with(".partitions.bin")) {
        return Err("Manifest must include a partitions.bin file".into());
    }
    Ok(files)
}

/// A member name that stays inside any directory on every system: relative, no `..`, no
/// backslash, no drive, no control characters, no empty segment.
fn safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('/')
        && !name.contains('\\')
        && !name.contains(':')
        && !name.chars().any(char::is_control)
        && name
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
}

/// Inflates member `index` through SHA-256, counting what it yields: past `limit` it
/// stops with an error, whatever the header claimed. Keeps the bytes when asked.
fn read_member(
    archive: &mut zip::ZipArchive<std::io::Cursor<&[u8]>>,
    index: usize,
    limit: u64,
    total: &mut u64,
    keep: bool,
) -> Result<(String, Vec<u8>), Invalid> {
    let mut member = archive
        .by_index(index)
        .map_err(|e| invalid(format!("ZIP entry {index} cannot be read: {e}")))?;
    let name = member.name().map(|n| n.into_owned()).unwrap_or_default();
    let mut digest = Context::new(&SHA256);
    let mut kept = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let mut read = 0u64;
    loop {
        let n = member
            .read(&mut buf)
            .map_err(|e| invalid(format!("ZIP member '{name}' is corrupt: {e}")))?;
        if n == 0 {
            break;
        }
        read += n as u64;
        *total += n as u64;
        if read > limit {
            return Err(invalid(format!(
                "ZIP member '{name}' is larger than {} MiB",
                limit.div_ceil(MIB)
            )));
        }
        digest.update(&buf[..n]);
        if keep {
            kept.extend_from_slice(&buf[..n]);
        }
    }
    Ok((hex(digest.finish().as_ref()), kept))
}

/// Lower-case hex, as `hashlib`'s `hexdigest()` writes a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of `bytes` in lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(ring::digest::digest(&SHA256, bytes).as_ref())
}

/// An ESP32 partition table: 32-byte entries, magic `AA 50`, the offset at bytes 4..8
/// (little-endian), the name at 12..28 (NUL-terminated), as FireFly reads it.
pub fn partition_offsets(data: &[u8]) -> BTreeMap<String, u64> {
    let mut offsets = BTreeMap::new();
    for entry in data.chunks_exact(32) {
        if entry[0] != 0xAA || entry[1] != 0x50 {
            continue;
        }
        let offset = u32::from_le_bytes([entry[4], entry[5], entry[6], entry[7]]);
        let raw = &entry[12..28];
        let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
        // Python's decode("utf-8", errors="ignore"): invalid bytes dropped.
        let name: String = String::from_utf8_lossy(&raw[..end])
            .chars()
            .filter(|c| *c != '\u{fffd}')
            .collect();
        if !name.is_empty() {
            offsets.insert(name, u64::from(offset));
        }
    }
    offsets
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firmware::build::{Build, Member};

    fn zip_of(members: &[(&str, &[u8])]) -> Vec<u8> {
        crate::firmware::build::zip(
            &members
                .iter()
                .map(|(n, b)| Member::new(n, b.to_vec()))
                .collect::<Vec<_>>(),
        )
        .unwrap()
    }

    #[test]
    fn a_real_build_passes_with_its_offsets_and_main_binary() {
        let b = Build::example("0x32322304", "2026.03.01");
        let zip = b.zip().unwrap();
        let checked = check(&zip, &Limits::FIREFLY).expect("passes");
        assert_eq!(checked.main_binary.as_deref(), Some("Controller.ino.bin"));
        assert_eq!(checked.partition_offsets.get("app0"), Some(&0x10000));
        assert_eq!(checked.partition_offsets.get("nvs"), Some(&0x9000));
        // Numbers of the manifest stay numbers (its `memory` object).
        assert!(checked.manifest["memory"]["flash"]["used"].is_u64());
    }

    #[test]
    fn a_flash_sized_merged_image_and_a_blank_config_pass_though_they_inflate_hugely() {
        // 16 MiB of merged image and 512 KiB of 0xFF: ratios no ratio limit would allow.
        let mut b = Build::example("0x32322304", "2026.03.02");
        b.add("Controller.ino.merged.bin", vec![0xFF; 16 << 20]);
        let zip = b.zip().unwrap();
        assert!(zip.len() < 512 * 1024, "{}", zip.len());
        check(&zip, &Limits::FIREFLY).expect("a real build passes");
    }

    fn message(zip: &[u8]) -> String {
        check(zip, &Limits::FIREFLY).unwrap_err().message
    }

    #[test]
    fn names_that_would_escape_a_directory_are_refused_before_anything_is_read() {
        for name in [
            "/etc/passwd",
            "../escape.bin",
            "a/../../escape.bin",
            "dir\\file.bin",
            "C:/x.bin",
            "./x.bin",
        ] {
            let zip = zip_of(&[("manifest.json", b"{}"), (name, b"x")]);
            assert!(
                message(&zip).contains("Unsafe ZIP entry name"),
                "{name}: {}",
                message(&zip)
            );
        }
    }

    #[test]
    fn directory_entries_are_refused() {
        let zip = crate::firmware::build::zip(&[
            Member::new("manifest.json", b"{}".to_vec()),
            Member::directory("sub/"),
        ])
        .unwrap();
        assert!(
            message(&zip).contains("is a directory"),
            "{}",
            message(&zip)
        );
    }

    #[test]
    fn a_zip_bomb_stops_at_the_limit_whatever_its_header_says() {
        let mut b = Build::example("0x32322304", "2026.03.03");
        b.add("bomb.bin", vec![0; 40 << 20]);
        let zip = b.zip().unwrap();
        let m = message(&zip);
        assert!(m.contains("larger than 32 MiB"), "{m}");
        // A header that understates the size: the inflated bytes are counted anyway.
        let limits = Limits {
            member_bytes: 1 << 20,
            ..Limits::FIREFLY
        };
        let mut b = Build::example("0x32322304", "2026.03.04");
        b.add("bomb.bin", vec![0; 2 << 20]);
        let mut zip = b.zip().unwrap();
        understate_sizes(&mut zip);
        let e = check(&zip, &limits).unwrap_err();
        assert!(e.message.contains("'bomb.bin'"), "{}", e.message);
        // And the total of many members within their own limit.
        let limits = Limits {
            total_bytes: 3 << 20,
            ..Limits::FIREFLY
        };
        let mut b = Build::example("0x32322304", "2026.03.05");
        for i in 0..4 {
            b.add(&format!("part{i}.bin"), vec![i; 1 << 20]);
        }
        let e = check(&b.zip().unwrap(), &limits).unwrap_err();
        assert!(
            e.message.contains("expands to more than 3 MiB"),
            "{}",
            e.message
        );
        let too_many: Vec<(String, Vec<u8>)> =
            (0..65).map(|i| (format!("f{i}"), vec![1])).collect();
        let members: Vec<(&str, &[u8])> = too_many
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_slice()))
            .collect();
        assert!(message(&zip_of(&members)).contains("65 entries"));
    }

    /// Rewrites the uncompressed size of `bomb.bin` in its local and central headers to 1.
    fn understate_sizes(zip: &mut [u8]) {
        let name = b"bomb.bin";
        let mut i = 0;
        while i + 46 + name.len() <= zip.len() {
            match &zip[i..i + 4] {
                [0x50, 0x4b, 0x03, 0x04] if &zip[i + 30..i + 30 + name.len()] == name => {
                    zip[i + 22..i + 26].copy_from_slice(&1u32.to_le_bytes())
                }
                [0x50, 0x4b, 0x01, 0x02] if &zip[i + 46..i + 46 + name.len()] == name => {
                    zip[i + 24..i + 28].copy_from_slice(&1u32.to_le_bytes())
                }
                _ => {}
            }
            i += 1;
        }
    }

    #[test]
    fn every_member_must_be_one_of_the_manifests_files() {
        let mut b = Build::example("0x32322304", "2026.03.06");
        b.extra("stowaway.bin", b"not in the manifest".to_vec());
        let m = message(&b.zip().unwrap());
        assert!(m.contains("'stowaway.bin' is not listed"), "{m}");
    }

    #[test]
    fn fireflys_messages_in_fireflys_order() {
        let mut b = Build::example("0x00000001", "1.0.0");
        b.manifest.remove("class");
        assert_eq!(
            message(&b.zip().unwrap()),
            "Manifest missing required field: class"
        );
        assert_eq!(
            message(b"THIS IS NOT A VALID ZIP FILE"),
            "File is not a zip file"
        );
        assert_eq!(
            message(&zip_of(&[("firmware.bin", b"x")])),
            "manifest.json missing"
        );
        let mut b = Build::example("0x00000001", "1.0.0");
        b.manifest.insert("files".into(), Value::from("x"));
        assert_eq!(
            message(&b.zip().unwrap()),
            "Manifest 'files' must be an array"
        );
        let mut b = Build::example("0x00000001", "1.0.0");
        b.drop_member("Controller.ino.bin");
        assert_eq!(
            message(&b.zip().unwrap()),
            "Missing file: Controller.ino.bin"
        );
        let mut b = Build::example("0x00000001", "1.0.0");
        b.corrupt_hash("Controller.ino.bin");
        assert_eq!(
            message(&b.zip().unwrap()),
            "SHA256 mismatch for Controller.ino.bin"
        );
    }

    #[test]
    fn required_fields_of_the_wrong_type_are_an_error_that_keeps_the_manifest() {
        for (field, value) in [
            ("version", serde_json::json!(2026.03)),
            ("class", serde_json::json!(["x"])),
            ("product_hex", serde_json::json!(null)),
        ] {
            let mut b = Build::example("0x00000001", "1.0.0");
            b.manifest.insert(field.into(), value);
            let e = check(&b.zip().unwrap(), &Limits::FIREFLY).unwrap_err();
            assert_eq!(
                e.message,
                format!("Manifest field '{field}' must be a string")
            );
            assert!(e.manifest.is_some());
        }
    }

    #[test]
    fn partition_tables_are_read_as_firefly_reads_them() {
        let mut table = vec![0xFFu8; 3072];
        let entry = |name: &str, offset: u32| {
            let mut e = vec![0u8; 32];
            e[0] = 0xAA;
            e[1] = 0x50;
            e[4..8].copy_from_slice(&offset.to_le_bytes());
            e[12..12 + name.len()].copy_from_slice(name.as_bytes());
            e
        };
        table[..32].copy_from_slice(&entry("nvs", 0x9000));
        table[32..64].copy_from_slice(&entry("app0", 0x10000));
        let offsets = partition_offsets(&table);
        assert_eq!(offsets.len(), 2);
        assert_eq!(offsets["app0"], 0x10000);
    }
}
