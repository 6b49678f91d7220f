"""The orchestrators: each command's flow from Settings to a result value. Nothing below
this package imports it; `api` re-exports its functions."""
