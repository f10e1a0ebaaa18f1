//! On a kernel without IPVS (this host's: `ip_vs` is not built), opening a
//! handle yields the typed `NotAvailable` error. Opening a generic-netlink
//! socket and asking nlctrl for a family needs no privilege, so this is a
//! tier-1 test; on a kernel that does have IPVS it says so and checks that
//! the handle opened instead.

use lvskit_ipvs::{Error, Handle, OpenOptions};

fn ipvs_registered() -> bool {
    // /proc/net/ip_vs exists exactly when the ip_vs module is loaded.
    std::path::Path::new("/proc/net/ip_vs").exists()
}

#[test]
fn open_without_ipvs_is_not_available() {
    let result = Handle::open_with(&OpenOptions::new().lookup_attempts(2));
    if ipvs_registered() {
        eprintln!("this kernel has IPVS loaded: checking that the handle opened instead");
        let handle = result.expect("IPVS is loaded, the handle must open");
        assert_ne!(handle.family_id(), 0);
        return;
    }
    match result {
        Err(Error::NotAvailable) => {}
        other => panic!("expected Error::NotAvailable, got {other:?}"),
    }
    let message = Error::NotAvailable.to_string();
    assert!(message.contains("ip_vs"), "{message}");
}

#[tokio::test]
async fn async_open_without_ipvs_is_not_available() {
    let result = lvskit_ipvs::AsyncHandle::open().await;
    if ipvs_registered() {
        eprintln!("this kernel has IPVS loaded: checking that the handle opened instead");
        assert_ne!(result.expect("IPVS is loaded").family_id(), 0);
        return;
    }
    assert!(matches!(result, Err(Error::NotAvailable)), "{result:?}");
}
