
/// The class of F3 on a new filesystem: a tmpfs with tmpcopyup (and rro)
/// whose destination a second container swaps with a symlink to /etc
/// while it is set up. The copy and the attributes go to the tmpfs
/// through its own fd: the container's /etc never receives the covered
/// directory's contents, and the tmpfs is read-only wherever it landed.
#[test]
fn tmpfs_copy_up_never_lands_elsewhere() {
    require!(
        !is_runc(),
        "runc copies up and remounts by name after the mount"
    );
    let shared = host_dir("copyvol");
    let s = shared.path().to_path_buf();
    fs::create_dir(s.join("t")).unwrap();
    fs::write(s.join("t/INJECTED"), "x").unwrap();
    symlink("/etc", s.join("sym")).unwrap();
    let (a, l) = (s.join("t"), s.join("sym"));
    let racer = Racer::spawn(move || exchange(&a, &l));
    let b = Bundle::new()
        .private_rootfs()
        .bind_mount(&s, "/s", &["rbind", "rw"])
        .mount(json!({"destination": "/s/t", "type": "tmpfs", "source": "tmpfs",
                      "options": ["tmpcopyup", "rro", "nosuid"]}))
        .sh("ls /etc/INJECTED 2>/dev/null && echo INJECTED; \
             for d in /s/t /s/sym; do [ -e $d/INJECTED ] && \
               (touch $d/w) 2>/dev/null && echo WRITABLE $d; done; true");
    let c = Container::new(b);
    let mut ok = 0;
    for _ in 0..20 {
        let o = c.run();
        let _ = c.delete();
        assert!(!o.stdout.contains("INJECTED"), "{o}");
        assert!(!o.stdout.contains("WRITABLE"), "{o}");
        ok += o.success() as u32;
    }
    drop(racer);
    assert!(ok > 0, "no run succeeded");
}
