//! Platform facts read from sysfs: Device DAX detection and size, the
//! persistence domain (eADR), and the deep-flush control of a region.
//!
//! Every query goes through a [`Sysfs`] value naming the tree's root, so tests
//! point it at a fake tree and cover the Device DAX and eADR code paths on
//! machines that have neither.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A sysfs tree: the real `/sys`, or a stand-in for tests and containers.
///
/// # Examples
///
/// ```
/// use pmem_sys::{AutoFlush, Sysfs};
/// let fake = tempfile::tempdir()?;
/// // No NVDIMM regions at all: the platform does not flush caches on power loss.
/// assert_eq!(Sysfs::at(fake.path()).auto_flush(), AutoFlush::No);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sysfs {
    root: PathBuf,
}

/// Whether the platform writes CPU caches back on power loss (eADR).
///
/// # Examples
///
/// ```
/// use pmem_sys::{AutoFlush, Sysfs};
/// let fake = tempfile::tempdir()?;
/// // A region whose persistence domain cannot be read:
/// std::fs::create_dir_all(fake.path().join("bus/nd/devices/region0"))?;
/// assert_eq!(Sysfs::at(fake.path()).auto_flush(), AutoFlush::Unknown);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AutoFlush {
    /// Every NVDIMM region reports `cpu_cache` as its persistence domain.
    Yes,
    /// No regions, or some region needs explicit flushes.
    No,
    /// The regions could not be read.
    Unknown,
}

impl AutoFlush {
    /// libpmem's integer form: 1, 0 or -1.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_sys::AutoFlush;
    /// assert_eq!(AutoFlush::Yes.as_c_int(), 1);
    /// assert_eq!(AutoFlush::No.as_c_int(), 0);
    /// assert_eq!(AutoFlush::Unknown.as_c_int(), -1);
    /// ```
    #[must_use]
    pub fn as_c_int(self) -> i32 {
        match self {
            Self::Yes => 1,
            Self::No => 0,
            Self::Unknown => -1,
        }
    }
}

impl Sysfs {
    /// The system's `/sys`.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_sys::Sysfs;
    /// assert_eq!(Sysfs::system().root(), std::path::Path::new("/sys"));
    /// ```
    #[must_use]
    pub fn system() -> &'static Sysfs {
        static SYSTEM: OnceLock<Sysfs> = OnceLock::new();
        SYSTEM.get_or_init(|| Sysfs::at("/sys"))
    }

    /// A tree rooted at `root` (which stands for `/sys`).
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_sys::{AutoFlush, Sysfs};
    /// let fake = tempfile::tempdir()?;
    /// let region = fake.path().join("bus/nd/devices/region0");
    /// std::fs::create_dir_all(&region)?;
    /// std::fs::write(region.join("persistence_domain"), "cpu_cache\n")?;
    /// assert_eq!(Sysfs::at(fake.path()).auto_flush(), AutoFlush::Yes);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The root this tree reads from.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_sys::Sysfs;
    /// let sysfs = Sysfs::at("/run/host-sys");
    /// assert_eq!(sysfs.root(), std::path::Path::new("/run/host-sys"));
    /// ```
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn char_device_dir(&self, major: u32, minor: u32) -> PathBuf {
        self.root.join(format!("dev/char/{major}:{minor}"))
    }

    /// Whether character device `major:minor` is a Device DAX: its
    /// `subsystem` link resolves to a directory named `dax`.
    ///
    /// # Errors
    /// The `subsystem` link cannot be resolved (`ENOENT` and friends).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::unix::fs::symlink;
    /// use pmem_sys::Sysfs;
    /// let fake = tempfile::tempdir()?;
    /// let root = fake.path();
    /// // Character device 252:3, whose subsystem is `dax`.
    /// std::fs::create_dir_all(root.join("class/dax"))?;
    /// std::fs::create_dir_all(root.join("dev/char/252:3"))?;
    /// symlink(root.join("class/dax"), root.join("dev/char/252:3/subsystem"))?;
    /// let sysfs = Sysfs::at(root);
    /// assert!(sysfs.is_device_dax(252, 3)?);
    /// let unknown = sysfs.is_device_dax(252, 4).unwrap_err();
    /// assert_eq!(unknown.kind(), std::io::ErrorKind::NotFound);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_device_dax(&self, major: u32, minor: u32) -> io::Result<bool> {
        let subsystem = fs::canonicalize(self.char_device_dir(major, minor).join("subsystem"))?;
        Ok(subsystem.file_name().is_some_and(|name| name == "dax"))
    }

    /// The size in bytes of Device DAX `major:minor`.
    ///
    /// # Errors
    /// `size` is missing or does not hold a decimal number (`EINVAL`).
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_sys::Sysfs;
    /// let fake = tempfile::tempdir()?;
    /// let dev = fake.path().join("dev/char/252:3");
    /// std::fs::create_dir_all(&dev)?;
    /// std::fs::write(dev.join("size"), "4194304\n")?;
    /// let sysfs = Sysfs::at(fake.path());
    /// assert_eq!(sysfs.device_dax_size(252, 3)?, 4 << 20);
    /// std::fs::write(dev.join("size"), "big\n")?;
    /// let err = sysfs.device_dax_size(252, 3).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn device_dax_size(&self, major: u32, minor: u32) -> io::Result<u64> {
        read_number(&self.char_device_dir(major, minor).join("size"))
    }

    /// The mapping alignment Device DAX `major:minor` requires, if it says.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_sys::Sysfs;
    /// let fake = tempfile::tempdir()?;
    /// let dev = fake.path().join("dev/char/252:3");
    /// std::fs::create_dir_all(dev.join("device"))?;
    /// std::fs::write(dev.join("device/align"), "2097152\n")?;
    /// let sysfs = Sysfs::at(fake.path());
    /// assert_eq!(sysfs.device_dax_alignment(252, 3), Some(2 << 20));
    /// assert_eq!(sysfs.device_dax_alignment(252, 4), None, "not said");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn device_dax_alignment(&self, major: u32, minor: u32) -> Option<u64> {
        read_number(&self.char_device_dir(major, minor).join("device/align")).ok()
    }

    /// The `deep_flush` control of the NVDIMM region holding Device DAX
    /// `major:minor`: the nearest `regionN` directory above the device.
    ///
    /// # Errors
    /// The device or its region cannot be found.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::unix::fs::symlink;
    /// use pmem_sys::Sysfs;
    /// let fake = tempfile::tempdir()?;
    /// let root = fake.path();
    /// // Device DAX 252:3 lies below NVDIMM region 7.
    /// let device = root.join("devices/platform/ndbus0/region7/dax7.0");
    /// std::fs::create_dir_all(&device)?;
    /// std::fs::create_dir_all(root.join("dev/char/252:3"))?;
    /// symlink(&device, root.join("dev/char/252:3/device"))?;
    /// assert_eq!(
    ///     Sysfs::at(root).region_deep_flush(252, 3)?,
    ///     root.join("bus/nd/devices/region7/deep_flush")
    /// );
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn region_deep_flush(&self, major: u32, minor: u32) -> io::Result<PathBuf> {
        let device = fs::canonicalize(self.char_device_dir(major, minor).join("device"))?;
        let region = device
            .ancestors()
            .find(|dir| {
                dir.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(is_region_name)
            })
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no NVDIMM region above {}", device.display()),
                )
            })?;
        let region_name = region.file_name().unwrap_or_default();
        Ok(self
            .root
            .join("bus/nd/devices")
            .join(region_name)
            .join("deep_flush"))
    }

    /// Whether every NVDIMM region's persistence domain is `cpu_cache`.
    ///
    /// Read afresh on every call, as libpmem's `pmem_has_auto_flush` does.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_sys::{AutoFlush, Sysfs};
    /// let fake = tempfile::tempdir()?;
    /// let sysfs = Sysfs::at(fake.path());
    /// let devices = fake.path().join("bus/nd/devices");
    /// for (region, domain) in [("region0", "cpu_cache"), ("region1", "memory_controller")] {
    ///     std::fs::create_dir_all(devices.join(region))?;
    ///     std::fs::write(devices.join(region).join("persistence_domain"), domain)?;
    /// }
    /// assert_eq!(sysfs.auto_flush(), AutoFlush::No, "region1 needs flushes");
    /// std::fs::write(devices.join("region1/persistence_domain"), "cpu_cache")?;
    /// assert_eq!(sysfs.auto_flush(), AutoFlush::Yes, "read afresh on each call");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn auto_flush(&self) -> AutoFlush {
        let devices = self.root.join("bus/nd/devices");
        let entries = match fs::read_dir(&devices) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return AutoFlush::No,
            Err(_) => return AutoFlush::Unknown,
        };
        let mut regions = 0;
        for entry in entries {
            let Ok(entry) = entry else {
                return AutoFlush::Unknown;
            };
            let name = entry.file_name();
            if !name.to_str().is_some_and(is_region_name) {
                continue;
            }
            regions += 1;
            match fs::read_to_string(entry.path().join("persistence_domain")) {
                Ok(domain) if domain.trim_end() == "cpu_cache" => {}
                Ok(_) => return AutoFlush::No,
                Err(_) => return AutoFlush::Unknown,
            }
        }
        if regions == 0 {
            AutoFlush::No
        } else {
            AutoFlush::Yes
        }
    }
}

/// `region` followed by a decimal id, as the nd bus names its regions.
fn is_region_name(name: &str) -> bool {
    name.strip_prefix("region")
        .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
}

fn read_number(path: &Path) -> io::Result<u64> {
    let text = fs::read_to_string(path)?;
    let text = text.trim();
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: expected a number, found {text:?}", path.display()),
        )
    })
}

/// Builders for fake sysfs trees, shared by this crate's tests.
#[cfg(test)]
pub(crate) mod fake {
    use std::fs;
    use std::os::unix::fs::symlink;
    use std::path::Path;

    /// Declares character device `major:minor` a Device DAX of `size` bytes in
    /// region `region`, laid out as the kernel does.
    pub(crate) fn add_device_dax(root: &Path, major: u32, minor: u32, size: u64, region: u32) {
        let dev = root.join(format!(
            "devices/platform/ndbus0/region{region}/dax{region}.0/dax{region}.0"
        ));
        fs::create_dir_all(&dev).unwrap();
        fs::create_dir_all(root.join("class/dax")).unwrap();
        symlink(root.join("class/dax"), dev.join("subsystem")).unwrap();
        fs::write(dev.join("size"), format!("{size}\n")).unwrap();
        fs::write(dev.parent().unwrap().join("align"), "2097152\n").unwrap();
        symlink(dev.parent().unwrap(), dev.join("device")).unwrap();
        fs::create_dir_all(root.join("dev/char")).unwrap();
        symlink(&dev, root.join(format!("dev/char/{major}:{minor}"))).unwrap();
        let region_dir = root.join(format!("bus/nd/devices/region{region}"));
        fs::create_dir_all(&region_dir).unwrap();
        fs::write(region_dir.join("deep_flush"), "").unwrap();
    }

    /// Declares a region with the given persistence domain.
    pub(crate) fn add_region(root: &Path, region: u32, domain: &str) {
        let region_dir = root.join(format!("bus/nd/devices/region{region}"));
        fs::create_dir_all(&region_dir).unwrap();
        fs::write(region_dir.join("persistence_domain"), format!("{domain}\n")).unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_dax_found_by_subsystem() {
        let dir = tempfile::tempdir().unwrap();
        fake::add_device_dax(dir.path(), 252, 3, 4 << 20, 7);
        let sysfs = Sysfs::at(dir.path());
        assert!(sysfs.is_device_dax(252, 3).unwrap());
        assert_eq!(sysfs.device_dax_size(252, 3).unwrap(), 4 << 20);
        assert_eq!(sysfs.device_dax_alignment(252, 3), Some(2 << 20));
        assert_eq!(
            sysfs.region_deep_flush(252, 3).unwrap(),
            dir.path().join("bus/nd/devices/region7/deep_flush")
        );
        assert_eq!(
            sysfs.is_device_dax(252, 4).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }

    #[test]
    fn other_char_devices_are_not_dax() {
        let dir = tempfile::tempdir().unwrap();
        let dev = dir.path().join("devices/virtual/mem/null");
        fs::create_dir_all(&dev).unwrap();
        fs::create_dir_all(dir.path().join("class/mem")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("class/mem"), dev.join("subsystem")).unwrap();
        fs::create_dir_all(dir.path().join("dev/char")).unwrap();
        std::os::unix::fs::symlink(&dev, dir.path().join("dev/char/1:3")).unwrap();
        assert!(!Sysfs::at(dir.path()).is_device_dax(1, 3).unwrap());
    }

    #[test]
    fn auto_flush_needs_every_region_in_cpu_cache() {
        let dir = tempfile::tempdir().unwrap();
        let sysfs = Sysfs::at(dir.path());
        assert_eq!(sysfs.auto_flush(), AutoFlush::No, "no sysfs");
        fs::create_dir_all(dir.path().join("bus/nd/devices/ndbus0")).unwrap();
        assert_eq!(sysfs.auto_flush(), AutoFlush::No, "no regions");
        fake::add_region(dir.path(), 0, "cpu_cache");
        assert_eq!(sysfs.auto_flush(), AutoFlush::Yes);
        fake::add_region(dir.path(), 1, "memory_controller");
        assert_eq!(sysfs.auto_flush(), AutoFlush::No);
        fs::remove_file(dir.path().join("bus/nd/devices/region1/persistence_domain")).unwrap();
        assert_eq!(sysfs.auto_flush(), AutoFlush::Unknown);
        assert_eq!(AutoFlush::Unknown.as_c_int(), -1);
    }

    #[test]
    fn region_names() {
        assert!(is_region_name("region0"));
        assert!(is_region_name("region12"));
        assert!(!is_region_name("region"));
        assert!(!is_region_name("regionx"));
        assert!(!is_region_name("ndbus0"));
    }

    #[test]
    fn numbers_in_decimal_and_hex() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("n");
        fs::write(&p, "0x200000\n").unwrap();
        assert_eq!(read_number(&p).unwrap(), 2 << 20);
        fs::write(&p, "twelve").unwrap();
        let err = read_number(&p).unwrap_err();
        assert!(
            err.to_string()
                .contains("expected a number, found \"twelve\""),
            "{err}"
        );
    }
}
