//! A stream wrapper that tells its owner when the connection is gone, so a link manager
//! can redial at once instead of discovering the loss at the next request.

use pin_project_lite::pin_project;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::sync::{CancellationToken, DropGuard};

/// Fires when the watched stream is dropped (the HTTP/2 connection task ended).
#[derive(Clone, Debug)]
pub struct ClosedSignal(CancellationToken);

impl ClosedSignal {
    pub async fn closed(&self) {
        self.0.cancelled().await
    }

    pub fn is_closed(&self) -> bool {
        self.0.is_cancelled()
    }
}

pin_project! {
    pub struct WatchedStream<S> {
        #[pin]
        inner: S,
        _guard: DropGuard,
    }
}

impl<S> WatchedStream<S> {
    pub fn new(inner: S) -> (Self, ClosedSignal) {
        let token = CancellationToken::new();
        let signal = ClosedSignal(token.clone());
        (
            WatchedStream {
                inner,
                _guard: token.drop_guard(),
            },
            signal,
        )
    }
}

impl<S: AsyncRead> AsyncRead for WatchedStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        self.project().inner.poll_read(cx, buf)
    }
}

impl<S: AsyncWrite> AsyncWrite for WatchedStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.project().inner.poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        self.project().inner.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
