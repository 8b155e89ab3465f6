#!/bin/sh
# markets.fcgi — the site owner's FastCGI wrapper for shared hosting
# (docs/shared-hosting.md): copy it to ~/public_html/markets/markets.fcgi,
# mode 0755, beside the .htaccess. The host's mod_fcgid starts it (as the
# owner, through suEXEC) with the FastCGI socket on fd 0; it names the
# configuration — a file outside the document root, mode 0600 — and
# becomes the app. The host's suEXEC passes no environment of the site's
# own, so settings belong in that file, not in MARKETS_* variables.
#
# The paths are those of `make install prefix=$HOME/markets` (installed
# as share/markets/examples/shared-hosting/markets.fcgi, they are already
# the install's); edit them if the binary or the file live elsewhere.
exec /usr/local/sbin/markets --config /etc/markets/markets.conf
