//! SSH transport: russh with key auth, one connection per host for the whole run,
//! exec channels for commands, SFTP for stat/read/write, sudo for become.
