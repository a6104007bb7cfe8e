//! Footprint build: the core client (16 KiB queue, async driver) with a transport that
//! answers 200 from memory — no network stack. Boots in QEMU, sends, exits 0.
//!
//! `footprint.sh` measures this image; it holds only what an application needs to log and
//! send events, so its size is the SDK's cost plus a minimal runtime.
#![no_std]
#![no_main]

use amplitude_core::transport::{Request, Response, Transport, TransportError};

#[path = "../footprint_app.rs"]
mod app;
#[path = "../time_driver.rs"]
mod time_driver;

/// Answers every request with `200 {"code":200}`.
pub struct MemoryTransport;

impl Transport for MemoryTransport {
    async fn send<'b>(
        &mut self,
        _request: Request<'_>,
        buf: &'b mut [u8],
    ) -> Result<Response<'b>, TransportError> {
        let body = b"{\"code\":200}";
        let n = body.len().min(buf.len());
        buf[..n].copy_from_slice(&body[..n]);
        Ok(Response::new(200, &buf[..n]))
    }
}

/// Buffers the application configures: none beyond the core's.
pub struct Extra;

pub static BUFFERS: static_cell::ConstStaticCell<app::Buffers<Extra>> =
    static_cell::ConstStaticCell::new(app::Buffers::new(Extra));

#[embassy_executor::task]
async fn sender(
    shared: &'static app::Driver,
    body: &'static mut [u8],
    response: &'static mut [u8],
) -> ! {
    shared.run(MemoryTransport, body, response).await
}

#[embassy_executor::main]
async fn main(spawner: embassy_executor::Spawner) {
    let app::CoreBuffers {
        arena,
        slots,
        body,
        response,
    } = &mut BUFFERS.take().core;
    let shared = app::start(arena, slots);
    let Ok(token) = sender(shared, body, response) else {
        app::exit(false);
    };
    spawner.spawn(token);
    app::log_and_flush(shared, true).await;
}
