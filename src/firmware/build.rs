//! Firmware ZIPs as FireFly-Controller's build makes them (`build-firmware.yaml`):
//! arduino-cli's output directory, the LittleFS images and a `manifest.json` that lists
//! every file with its SHA-256. For tests and for `firefly-local firmware build`.

pub use super::archive::sha256_hex;
use serde_json::{Map, Value, json};
use std::io::Write;

/// One member of a ZIP.
#[derive(Debug, Clone)]
pub struct Member {
    pub name: String,
    pub bytes: Vec<u8>,
    directory: bool,
}

impl Member {
    pub fn new(name: &str, bytes: Vec<u8>) -> Self {
        Self {
            name: name.to_owned(),
            bytes,
            directory: false,
        }
    }

    pub fn directory(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            bytes: Vec::new(),
            directory: true,
        }
    }
}

/// Writes `members` into a ZIP (deflated), names as given.
pub fn zip(members: &[Member]) -> Result<Vec<u8>, String> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(false);
    for m in members {
        if m.directory {
            w.add_directory(m.name.as_str(), options)
                .map_err(|e| format!("{}: {e}", m.name))?;
        } else {
            w.start_file(m.name.as_str(), options)
                .map_err(|e| format!("{}: {e}", m.name))?;
            w.write_all(&m.bytes)
                .map_err(|e| format!("{}: {e}", m.name))?;
        }
    }
    w.finish()
        .map(std::io::Cursor::into_inner)
        .map_err(|e| e.to_string())
}

/// How a member relates to the manifest's `files`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listing {
    Listed,
    /// In the ZIP, not in `files`.
    Extra,
    /// In `files`, not in the ZIP.
    Missing,
    /// In both, with a SHA-256 that is not its own.
    WrongHash,
}

/// A build: the manifest's fields and the members. `files` is written when the ZIP is
/// (unless the manifest already has one).
#[derive(Debug, Clone)]
pub struct Build {
    pub manifest: Map<String, Value>,
    members: Vec<(Member, Listing)>,
}

/// FireFly's 16 MB boards' partition scheme (devices.yaml): name, type, subtype, offset,
/// size.
const SCHEME: [(&str, u8, u8, u32, u32); 6] = [
    ("nvs", 1, 2, 0x9000, 0x5000),
    ("otadata", 1, 0, 0xe000, 0x2000),
    ("app0", 0, 16, 0x10000, 0x640000),
    ("app1", 0, 17, 0x650000, 0x640000),
    ("spiffs", 1, 130, 0xc90000, 0x360000),
    ("coredump", 1, 3, 0xff0000, 0x10000),
];

/// An ESP32 partition table (3 KiB, 0xFF after the entries), as arduino-cli writes it.
pub fn partition_table() -> Vec<u8> {
    let mut table = vec![0xFFu8; 3072];
    for (i, (name, kind, subtype, offset, size)) in SCHEME.iter().enumerate() {
        let e = &mut table[i * 32..(i + 1) * 32];
        e[0] = 0xAA;
        e[1] = 0x50;
        e[2] = *kind;
        e[3] = *subtype;
        e[4..8].copy_from_slice(&offset.to_le_bytes());
        e[8..12].copy_from_slice(&size.to_le_bytes());
        e[12..28].fill(0);
        e[12..12 + name.len()].copy_from_slice(name.as_bytes());
        e[28..32].fill(0);
    }
    table
}

/// Bytes that do not compress (a compiled image does not), the same for the same seed.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

impl Build {
    /// A Controller build of `product_hex` at `version`, with every file FireFly's build
    /// puts in its ZIP; the application image is `image_kib` of incompressible bytes.
    pub fn controller(product_hex: &str, version: &str, image_kib: usize) -> Self {
        let app = "Controller";
        let manifest = json!({
            "class": "controller",
            "product_id": "FFC3232-2304",
            "product_hex": product_hex,
            "firmware_type": "FireFly Controller",
            "application": app,
            "branch": "main",
            "version": version,
            "commit": "0123456789abcdef0123456789abcdef01234567",
            "created": "2026-12-07T00:00:00Z",
            "bootloader_addr": "0x1000",
            "memory": {
                "flash": { "used": image_kib * 1024, "available": 6_553_600 },
                "ram": { "used": 61_234, "available": 327_680 }
            }
        });
        let Value::Object(manifest) = manifest else {
            unreachable!("a JSON object literal")
        };
        let seed = version
            .bytes()
            .fold(7u64, |h, b| h.wrapping_mul(31) ^ u64::from(b));
        let map: Vec<u8> = (0..4096)
            .flat_map(|i| {
                format!(" .text.fn{i:05}  0x{:08x}  0x40\n", 0x400d_0000 + i * 64).into_bytes()
            })
            .collect();
        let mut b = Self {
            manifest,
            members: Vec::new(),
        };
        b.add(&format!("{app}.ino.bin"), noise(image_kib * 1024, seed));
        b.add(
            &format!("{app}.ino.bootloader.bin"),
            noise(18 * 1024, seed + 1),
        );
        b.add(&format!("{app}.ino.partitions.bin"), partition_table());
        b.add(
            &format!("{app}.ino.elf"),
            noise(image_kib * 1024 / 2, seed + 2),
        );
        b.add(&format!("{app}.ino.map"), map);
        b.add("ui.bin", {
            let mut ui = noise(64 * 1024, seed + 3);
            ui.resize(1024 * 1024, 0xFF);
            ui
        });
        // The LittleFS config image: 512 KiB, almost all erased flash.
        b.add("config.bin", {
            let mut c = vec![0xFFu8; 512 * 1024];
            c[..4096].copy_from_slice(&noise(4096, seed + 4));
            c
        });
        b
    }

    /// A small Controller build (tests).
    pub fn example(product_hex: &str, version: &str) -> Self {
        Self::controller(product_hex, version, 64)
    }

    /// Adds a member the manifest lists.
    pub fn add(&mut self, name: &str, bytes: Vec<u8>) {
        self.members
            .push((Member::new(name, bytes), Listing::Listed));
    }

    /// Adds a member the manifest does not list.
    pub fn extra(&mut self, name: &str, bytes: Vec<u8>) {
        self.members
            .push((Member::new(name, bytes), Listing::Extra));
    }

    /// Keeps `name` in the manifest and out of the ZIP.
    pub fn drop_member(&mut self, name: &str) {
        self.set(name, Listing::Missing);
    }

    /// Lists `name` with another file's SHA-256.
    pub fn corrupt_hash(&mut self, name: &str) {
        self.set(name, Listing::WrongHash);
    }

    fn set(&mut self, name: &str, listing: Listing) {
        for (m, l) in &mut self.members {
            if m.name == name {
                *l = listing;
            }
        }
    }

    /// The manifest as the ZIP carries it.
    pub fn manifest(&self) -> Map<String, Value> {
        let mut manifest = self.manifest.clone();
        if !manifest.contains_key("files") {
            let files: Vec<Value> = self
                .members
                .iter()
                .filter(|(_, l)| *l != Listing::Extra)
                .map(|(m, l)| {
                    let sha = if *l == Listing::WrongHash {
                        sha256_hex(b"DIFFERENT CONTENT")
                    } else {
                        sha256_hex(&m.bytes)
                    };
                    json!({ "name": m.name, "sha256": sha })
                })
                .collect();
            manifest.insert("files".into(), Value::Array(files));
        }
        manifest
    }

    /// The ZIP: `manifest.json` first, then the members (as `zip -r .` of the output
    /// directory would hold them).
    pub fn zip(&self) -> Result<Vec<u8>, String> {
        let manifest = serde_json::to_vec_pretty(&Value::Object(self.manifest()))
            .map_err(|e| e.to_string())?;
        let mut members = vec![Member::new("manifest.json", manifest)];
        members.extend(
            self.members
                .iter()
                .filter(|(_, l)| *l != Listing::Missing)
                .map(|(m, _)| m.clone()),
        );
        zip(&members)
    }
}
