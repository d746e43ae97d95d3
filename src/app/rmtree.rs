//! `rm -rf` of an app's directory, whatever tree the app left in it. The
//! upper directory holds what the app made: a directory nested 60,000 deep
//! (mkdir t; mv a t/a; mv t a, in a loop) takes a descriptor per level from
//! a recursive removal (std's gives up with EMFILE, leaving an app `rm` can
//! never remove) or the stack. Here every directory's children are moved up
//! into the top directory, then it is removed: two descriptors, any depth,
//! each entry renamed at most once. No symlink is followed, no mount
//! crossed (a rename across one fails: nothing below a mount is touched).

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{OFlag, RenameFlags, openat, renameat2};
use nix::sys::stat::Mode;
use nix::unistd::{UnlinkatFlags, unlinkat};

fn open_dir(at: impl AsFd, name: &OsStr) -> Result<OwnedFd, Errno> {
    openat(
        at,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// The names in a directory (without . and ..).
fn names(dir: &OwnedFd) -> Result<Vec<OsString>, Errno> {
    let fd = nix::unistd::dup(dir)?;
    let mut d = Dir::from_fd(fd)?;
    let mut out = Vec::new();
    for e in d.iter() {
        let e = e?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            out.push(OsStr::from_bytes(n).to_os_string());
        }
    }
    Ok(out)
}

/// Removes `path` and everything below it; a missing path is fine.
pub fn remove_tree(path: &Path) -> std::io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.is_dir() {
        return std::fs::remove_file(path);
    }
    let top = open_dir(nix::fcntl::AT_FDCWD, path.as_os_str())?;
    let mut next = 0u64;
    loop {
        let list = names(&top)?;
        if list.is_empty() {
            break;
        }
        for name in list {
            match unlinkat(&top, name.as_os_str(), UnlinkatFlags::NoRemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => continue,
                Err(Errno::EISDIR) => {}
                Err(e) => return Err(e.into()),
            }
            match unlinkat(&top, name.as_os_str(), UnlinkatFlags::RemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => continue,
                Err(Errno::ENOTEMPTY | Errno::EEXIST) => {}
                Err(e) => return Err(e.into()),
            }
            // Its children move up next to it, then it goes.
            let sub = open_dir(&top, &name)?;
            for child in names(&sub)? {
                loop {
                    let to = format!(".rrun-rm-{next}");
                    next += 1;
                    match renameat2(
                        &sub,
                        child.as_os_str(),
                        &top,
                        to.as_str(),
                        RenameFlags::RENAME_NOREPLACE,
                    ) {
                        Ok(()) => break,
                        Err(Errno::EEXIST) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            drop(sub);
            match unlinkat(&top, name.as_os_str(), UnlinkatFlags::RemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    drop(top);
    std::fs::remove_dir(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_deep_trees_links_and_files() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("app");
        std::fs::create_dir(&root).unwrap();
        // 3000 levels: far past the descriptors a recursive removal may hold.
        let mut d = root.join("a");
        std::fs::create_dir(&d).unwrap();
        for _ in 0..3000 {
            let tmp = root.join("t");
            std::fs::create_dir(&tmp).unwrap();
            std::fs::rename(&d, tmp.join("a")).unwrap();
            std::fs::rename(&tmp, &d).unwrap();
        }
        d = d.join("a");
        std::fs::write(d.join("f"), b"x").unwrap();
        // A link out of the tree is removed, never followed.
        let outside = t.path().join("keep");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("k"), b"k").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
        std::fs::write(root.join(".rrun-rm-0"), b"name clash").unwrap();
        remove_tree(&root).unwrap();
        assert!(!root.exists());
        assert!(outside.join("k").exists());
        remove_tree(&root).unwrap();
    }
}
