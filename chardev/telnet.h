/*
 * Telnet data escaping (RFC 854): a 0xff data byte travels as IAC IAC.
 */
#pragma once

#include <glib.h>

#include <string>
#include <string_view>

namespace qio::chardev {

/* Replaces @out with @in escaped, stopping before the byte whose escaped
 * form would make @out longer than @room, so that an IAC pair is never
 * split.  Returns how many bytes of @in were consumed. */
gsize telnet_escape(std::string_view in, gsize room, std::string &out);

}  // namespace qio::chardev
