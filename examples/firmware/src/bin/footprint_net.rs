//! Footprint build: the core client of `footprint-core`, sending through the
//! amplitude-embassy-net transport over an embassy-net stack (feature `net`), optionally
//! with TLS (feature `tls`). The network device is a stand-in that drops every frame, so
//! the image boots, tries to connect, and exits 0 after its flush deadline: it exists to
//! be measured by `footprint.sh`, not to deliver.
#![no_std]
#![no_main]

use core::task::Context;

use amplitude_embassy_net::{Config as TransportConfig, EmbassyNetTransport};
use embassy_net::tcp::client::{TcpClient, TcpClientState};
use embassy_net::{Ipv4Address, Ipv4Cidr, Runner, StackResources, StaticConfigV4};
use embassy_net_driver::{Capabilities, HardwareAddress, LinkState};
use embassy_time::Duration;

#[path = "../footprint_app.rs"]
mod app;
#[path = "../time_driver.rs"]
mod time_driver;

const TCP_TX: usize = 2048;
const TCP_RX: usize = 2048;
const HEADER_BYTES: usize = 1024;
const FRAME_BYTES: usize = 1514;

/// Buffers the network side configures.
pub struct Extra {
    resources: StackResources<3>,
    tcp: TcpClientState<1, TCP_TX, TCP_RX>,
    header: [u8; HEADER_BYTES],
    frame: [u8; FRAME_BYTES],
    #[cfg(feature = "tls")]
    tls: amplitude_embassy_net::TlsBuffers,
}

pub static BUFFERS: static_cell::ConstStaticCell<app::Buffers<Extra>> =
    static_cell::ConstStaticCell::new(app::Buffers::new(Extra {
        resources: StackResources::new(),
        tcp: TcpClientState::new(),
        header: [0; HEADER_BYTES],
        frame: [0; FRAME_BYTES],
        #[cfg(feature = "tls")]
        tls: amplitude_embassy_net::TlsBuffers::new(),
    }));

/// A link that is up but drops every frame it is given and never receives one.
pub struct NullDevice {
    frame: &'static mut [u8; FRAME_BYTES],
}

pub struct NullRx;
pub struct NullTx<'a>(&'a mut [u8; FRAME_BYTES]);

impl embassy_net_driver::RxToken for NullRx {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, f: F) -> R {
        f(&mut [])
    }
}

impl embassy_net_driver::TxToken for NullTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let len = len.min(self.0.len());
        f(&mut self.0[..len])
    }
}

impl embassy_net_driver::Driver for NullDevice {
    type RxToken<'a> = NullRx;
    type TxToken<'a> = NullTx<'a>;

    fn receive(&mut self, _cx: &mut Context) -> Option<(NullRx, NullTx<'_>)> {
        None
    }

    fn transmit(&mut self, _cx: &mut Context) -> Option<NullTx<'_>> {
        Some(NullTx(self.frame))
    }

    fn link_state(&mut self, _cx: &mut Context) -> LinkState {
        LinkState::Up
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::default();
        caps.max_transmission_unit = FRAME_BYTES;
        caps
    }

    fn hardware_address(&self) -> HardwareAddress {
        HardwareAddress::Ethernet([0x02, 0, 0, 0, 0, 0x01])
    }
}

type Transport = EmbassyNetTransport<'static, 1, TCP_TX, TCP_RX>;

static TCP_CLIENT: static_cell::StaticCell<TcpClient<'static, 1, TCP_TX, TCP_RX>> =
    static_cell::StaticCell::new();

#[embassy_executor::task]
async fn net_task(mut runner: Runner<'static, NullDevice>) -> ! {
    runner.run().await
}

#[embassy_executor::task]
async fn sender(
    shared: &'static app::Driver,
    transport: Transport,
    body: &'static mut [u8],
    response: &'static mut [u8],
) -> ! {
    shared.run(transport, body, response).await
}

#[embassy_executor::main]
async fn main(spawner: embassy_executor::Spawner) {
    let buffers = BUFFERS.take();
    let app::CoreBuffers {
        arena,
        slots,
        body,
        response,
    } = &mut buffers.core;
    let extra = &mut buffers.extra;
    let shared = app::start(arena, slots);

    let config = embassy_net::Config::ipv4_static(StaticConfigV4 {
        address: Ipv4Cidr::new(Ipv4Address::new(192, 168, 69, 2), 24),
        gateway: Some(Ipv4Address::new(192, 168, 69, 100)),
        dns_servers: heapless::Vec::new(),
    });
    let device = NullDevice {
        frame: &mut extra.frame,
    };
    let (stack, runner) = embassy_net::new(device, config, &mut extra.resources, 0x1234_5678);
    let tcp = TCP_CLIENT.init(TcpClient::new(stack, &extra.tcp));
    let transport = EmbassyNetTransport::new(
        stack,
        tcp,
        &mut extra.header,
        TransportConfig::default().connect_timeout(Duration::from_millis(500)),
    );
    // This image never reaches a server; a product must seed from a hardware RNG.
    #[cfg(feature = "tls")]
    let transport = transport.with_tls(
        &extra.tls,
        amplitude_embassy_net::TlsMode::InsecureNoVerify,
        [7; 32],
    );

    let (Ok(net), Ok(send)) = (net_task(runner), sender(shared, transport, body, response)) else {
        app::exit(false);
    };
    spawner.spawn(net);
    spawner.spawn(send);
    app::log_and_flush(shared, false).await;
}
