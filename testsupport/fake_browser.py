#!/usr/bin/env python3
"""A stand-in browser for login tests: drives oidc-provider-mock's sign-in page.

    fake_browser.py URL

GETs the authorization URL (the sign-in form), POSTs the form back as the user
FAKE_BROWSER_SUB (default alice) -- or presses Deny when FAKE_BROWSER_DENY=1 --
then follows the issuer's redirect to kontext's loopback listener, exactly as a
browser would.  If FAKE_BROWSER_MARK is set, that file is created first, so a
test can tell whether kontext launched the browser at all.  Prints nothing.
"""
import os
import sys
import urllib.error
import urllib.parse
import urllib.request


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def main() -> int:
    url = sys.argv[1]
    mark = os.environ.get("FAKE_BROWSER_MARK")
    if mark:
        open(mark, "w").close()
    urllib.request.urlopen(url, timeout=10).read()
    if os.environ.get("FAKE_BROWSER_DENY") == "1":
        form = {"action": "deny"}
    else:
        form = {"sub": os.environ.get("FAKE_BROWSER_SUB", "alice")}
    opener = urllib.request.build_opener(NoRedirect)
    try:
        opener.open(url, data=urllib.parse.urlencode(form).encode(), timeout=10)
        return 1  # the issuer must redirect
    except urllib.error.HTTPError as redirect:
        location = redirect.headers.get("Location")
        if redirect.code not in (301, 302, 303) or not location:
            return 1
    urllib.request.urlopen(location, timeout=10).read()
    return 0


if __name__ == "__main__":
    sys.exit(main())
