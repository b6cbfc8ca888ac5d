//! The virtio-mmio transport as SIS's drivers use it: `virtio-drivers`' `MmioTransport` with its queue
//! notifications counted and, for the network driver, the `VIRTIO_F_EVENT_IDX` feature withheld.
//!
//! Why the network driver goes without event indices: `virtio-drivers` 0.13 decides whether to notify the device
//! after adding a buffer by `avail_idx >= avail_event + 1`, where the virtio specification's test is whether
//! `avail_event` lies among the indices added since the last notification. QEMU writes `avail_event` only when it
//! re-enables notifications; while virtio-net is busy with a queue (a transmission pending in its bottom half, a
//! receive queue that has buffers) the field stays behind, the library's test holds, and every buffer added
//! notifies: a register write that traps to QEMU and waits for its global lock, once per frame sent and once per
//! receive buffer posted again. Without the feature the device says the same thing through the used ring's
//! `VIRTQ_USED_F_NO_NOTIFY` flag, which QEMU sets and clears as it disables and enables notifications and which
//! the library reads correctly. The driver's own interrupt suppression is then the available ring's flag
//! (`set_dev_notify`), which SIS leaves enabled, as before. The block device keeps event indices: QEMU's
//! virtio-blk takes the whole queue within the notification and re-enables notifications before it returns, so
//! `avail_event` is current whenever the block driver looks.

use core::sync::atomic::{AtomicU64, Ordering};

use virtio_drivers::transport::mmio::MmioTransport;
use virtio_drivers::transport::{DeviceStatus, DeviceType, InterruptStatus, Transport};
use virtio_drivers::PhysAddr;
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// `VIRTIO_F_EVENT_IDX` (virtio 1.2, section 6).
const EVENT_IDX: u64 = 1 << 29;

/// A virtio-mmio transport that counts notifications and can withhold `VIRTIO_F_EVENT_IDX` from the device's
/// features.
#[derive(Debug)]
pub struct SisTransport {
    inner: MmioTransport<'static>,
    /// Notifications written to the device.
    notifications: &'static AtomicU64,
    withhold_event_idx: bool,
}

impl SisTransport {
    /// Wraps `inner`; each notification adds one to `notifications`.
    pub(super) fn new(
        inner: MmioTransport<'static>,
        notifications: &'static AtomicU64,
        withhold_event_idx: bool,
    ) -> Self {
        SisTransport { inner, notifications, withhold_event_idx }
    }
}

impl Transport for SisTransport {
    fn device_type(&self) -> DeviceType {
        self.inner.device_type()
    }

    fn read_device_features(&mut self) -> u64 {
        let features = self.inner.read_device_features();
        if self.withhold_event_idx {
            features & !EVENT_IDX
        } else {
            features
        }
    }

    fn write_driver_features(&mut self, driver_features: u64) {
        self.inner.write_driver_features(driver_features)
    }

    fn max_queue_size(&mut self, queue: u16) -> u32 {
        self.inner.max_queue_size(queue)
    }

    fn notify(&mut self, queue: u16) {
        self.notifications.fetch_add(1, Ordering::Relaxed);
        self.inner.notify(queue)
    }

    fn get_status(&self) -> DeviceStatus {
        self.inner.get_status()
    }

    fn set_status(&mut self, status: DeviceStatus) {
        self.inner.set_status(status)
    }

    fn set_guest_page_size(&mut self, guest_page_size: u32) {
        self.inner.set_guest_page_size(guest_page_size)
    }

    fn requires_legacy_layout(&self) -> bool {
        self.inner.requires_legacy_layout()
    }

    fn queue_set(
        &mut self,
        queue: u16,
        size: u32,
        descriptors: PhysAddr,
        driver_area: PhysAddr,
        device_area: PhysAddr,
    ) {
        self.inner.queue_set(queue, size, descriptors, driver_area, device_area)
    }

    fn queue_unset(&mut self, queue: u16) {
        self.inner.queue_unset(queue)
    }

    fn queue_used(&mut self, queue: u16) -> bool {
        self.inner.queue_used(queue)
    }

    fn ack_interrupt(&mut self) -> InterruptStatus {
        self.inner.ack_interrupt()
    }

    fn read_config_generation(&self) -> u32 {
        self.inner.read_config_generation()
    }

    fn read_config_space<T: FromBytes + IntoBytes>(&self, offset: usize) -> virtio_drivers::Result<T> {
        self.inner.read_config_space(offset)
    }

    fn write_config_space<T: IntoBytes + Immutable>(&mut self, offset: usize, value: T) -> virtio_drivers::Result<()> {
        self.inner.write_config_space(offset, value)
    }
}
