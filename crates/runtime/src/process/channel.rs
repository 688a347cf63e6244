//! A typed, bidirectional channel between two processes: JSON lines over a Unix stream
//! socket pair. Each side names the message types it sends and receives, so a message of
//! the wrong direction does not compile. The end-of-file of the channel is itself a signal:
//! the container init's end is close-on-exec, so a successful `execve` closes it.

use std::io::{BufRead, BufReader, Write};
use std::marker::PhantomData;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Errors of a channel.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The socket pair could not be created.
    #[error("create channel socket pair")]
    Create(#[source] std::io::Error),
    /// Writing a message failed (the peer died?).
    #[error("send message on channel")]
    Send(#[source] std::io::Error),
    /// Reading a message failed.
    #[error("receive message on channel")]
    Receive(#[source] std::io::Error),
    /// The peer sent something that is not a message of the expected type.
    #[error("malformed message on channel: {line:?}")]
    Malformed {
        /// The offending line.
        line: String,
        /// Why it did not parse.
        #[source]
        source: serde_json::Error,
    },
}

/// One end of a channel that sends `S` and receives `R`.
#[derive(Debug)]
pub struct Channel<S, R> {
    reader: BufReader<UnixStream>,
    _types: PhantomData<fn(S) -> R>,
}

/// Two connected channel ends: the first sends `A` and receives `B`, the second the reverse.
pub type Pair<A, B> = (Channel<A, B>, Channel<B, A>);

/// Creates a connected pair of channel ends.
pub fn pair<A, B>() -> Result<Pair<A, B>, ChannelError> {
    let (a, b) = UnixStream::pair().map_err(ChannelError::Create)?;
    Ok((Channel::from_stream(a), Channel::from_stream(b)))
}

impl<S, R> Channel<S, R> {
    /// Wraps a connected stream.
    pub fn from_stream(stream: UnixStream) -> Self {
        Self {
            reader: BufReader::with_capacity(1024, stream),
            _types: PhantomData,
        }
    }

    /// Wraps an inherited descriptor that is a connected Unix stream socket.
    pub fn from_fd(fd: OwnedFd) -> Self {
        Self::from_stream(UnixStream::from(fd))
    }

    /// Gives up the channel, returning the socket.
    pub fn into_stream(self) -> UnixStream {
        self.reader.into_inner()
    }
}

impl<S: Serialize, R: DeserializeOwned> Channel<S, R> {
    /// Sends one message.
    pub fn send(&mut self, message: &S) -> Result<(), ChannelError> {
        let mut line = serde_json::to_vec(message).map_err(|e| {
            ChannelError::Send(std::io::Error::new(std::io::ErrorKind::InvalidData, e))
        })?;
        line.push(b'\n');
        self.reader
            .get_mut()
            .write_all(&line)
            .map_err(ChannelError::Send)
    }

    /// Receives one message; `None` when the peer closed its end (or exec'd).
    pub fn recv(&mut self) -> Result<Option<R>, ChannelError> {
        let mut line = String::new();
        let n = self
            .reader
            .read_line(&mut line)
            .map_err(ChannelError::Receive)?;
        if n == 0 {
            return Ok(None);
        }
        serde_json::from_str(line.trim_end())
            .map(Some)
            .map_err(|source| ChannelError::Malformed {
                line: line.trim_end().to_owned(),
                source,
            })
    }
}

impl<S, R> AsFd for Channel<S, R> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.reader.get_ref().as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_cross_in_both_directions_and_eof_is_none() {
        let (mut a, mut b) = pair::<u32, String>().unwrap();
        a.send(&7).unwrap();
        a.send(&8).unwrap();
        assert_eq!(b.recv().unwrap(), Some(7));
        assert_eq!(b.recv().unwrap(), Some(8));
        b.send(&"hi".to_owned()).unwrap();
        assert_eq!(a.recv().unwrap(), Some("hi".to_owned()));
        drop(a);
        assert_eq!(b.recv().unwrap(), None);
    }
}
