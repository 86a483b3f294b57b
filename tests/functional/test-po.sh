#!/bin/bash
# The translation catalogue stays true: every source with translatable
# messages is listed in po/POTFILES.in, and every LINGUAS language
# translates every current message (nothing missing, nothing fuzzy).
src=${QIO_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$src" || exit 1
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
n=0
ok() { n=$((n+1)); echo "ok $n - $1"; }
notok() { n=$((n+1)); echo "not ok $n - $1"; }

listed=$(grep -v '^#' po/POTFILES.in | sort)
using=$(git ls-files '*.cc' '*.h' 2>/dev/null | grep -v '^tests/' | xargs grep -l '[^A-Za-z_]N\?_("' | sort)
[ -n "$using" ] || using=$(find qio qcrypto qom monitor migration nbd chardev ui host tools -name '*.cc' 2>/dev/null | xargs grep -l '[^A-Za-z_]N\?_("' | sort)
missing=$(comm -13 <(echo "$listed") <(echo "$using"))
if [ -z "$missing" ]; then ok "po/POTFILES.in lists every source with translatable messages"
else notok "po/POTFILES.in lists every source with translatable messages"; echo "# missing: $missing"; fi

xgettext --keyword=_ --keyword=N_ --from-code=UTF-8 -o "$tmp/qio.pot" -f <(echo "$listed") 2>"$tmp/err" \
  && ok "xgettext extracts the catalogue" || { notok "xgettext extracts the catalogue"; sed 's/^/# /' "$tmp/err"; }
for lang in $(grep -v '^#' po/LINGUAS); do
  msgmerge -q -o "$tmp/$lang.po" "po/$lang.po" "$tmp/qio.pot" 2>/dev/null
  stats=$(msgfmt --check --statistics -o /dev/null "$tmp/$lang.po" 2>&1)
  if echo "$stats" | grep -qE 'untranslated|fuzzy'; then
    notok "po/$lang.po translates every message"; echo "# $stats"
    msgattrib --untranslated --only-fuzzy "$tmp/$lang.po" 2>/dev/null | grep '^msgid' | head -20 | sed 's/^/# /'
    msgattrib --untranslated "$tmp/$lang.po" 2>/dev/null | grep '^msgid' | head -20 | sed 's/^/# /'
  else ok "po/$lang.po translates every message ($stats)"; fi
done
echo "1..$n"
