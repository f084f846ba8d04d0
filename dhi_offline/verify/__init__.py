"""The verification plans. Imports nothing that opens a socket."""
