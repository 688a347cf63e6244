//! The processes of a container's life and how they talk: typed channels, the messages and
//! the error that cross process boundaries, the container init and the exec helper.

pub mod channel;
pub mod exec;
pub mod init;
pub mod message;
