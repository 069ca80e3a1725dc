/*
 * xclose: ask every top-level client window on $DISPLAY to close, the way a window manager
 * does when the user clicks the close button (a WM_DELETE_WINDOW ClientMessage). The lab uses
 * it to end a successful xfreerdp session gracefully: xfreerdp then disconnects as it does when
 * a user closes its window, instead of dying from a signal.
 *
 * Build: gcc -O2 -o xclose xclose.c -lX11
 * Exit status: 0 if at least one window was asked to close, 1 otherwise.
 */
#include <stdio.h>
#include <X11/Xlib.h>
#include <X11/Xutil.h>

static int asked;

static void maybe_close(Display *d, Window w, Atom wm_protocols, Atom wm_delete)
{
	Atom *protos = NULL;
	int n = 0;
	if (!XGetWMProtocols(d, w, &protos, &n))
		return;
	for (int i = 0; i < n; i++) {
		if (protos[i] != wm_delete)
			continue;
		XEvent ev = {0};
		ev.xclient.type = ClientMessage;
		ev.xclient.window = w;
		ev.xclient.message_type = wm_protocols;
		ev.xclient.format = 32;
		ev.xclient.data.l[0] = (long)wm_delete;
		ev.xclient.data.l[1] = CurrentTime;
		XSendEvent(d, w, False, NoEventMask, &ev);
		asked++;
		break;
	}
	XFree(protos);
}

static void walk(Display *d, Window w, Atom wm_protocols, Atom wm_delete, int depth)
{
	Window root, parent, *kids = NULL;
	unsigned int n = 0;
	if (depth > 0)
		maybe_close(d, w, wm_protocols, wm_delete);
	if (depth > 3 || !XQueryTree(d, w, &root, &parent, &kids, &n))
		return;
	for (unsigned int i = 0; i < n; i++)
		walk(d, kids[i], wm_protocols, wm_delete, depth + 1);
	if (kids)
		XFree(kids);
}

int main(void)
{
	Display *d = XOpenDisplay(NULL);
	if (!d) {
		fprintf(stderr, "xclose: cannot open display\n");
		return 2;
	}
	Atom wm_protocols = XInternAtom(d, "WM_PROTOCOLS", False);
	Atom wm_delete = XInternAtom(d, "WM_DELETE_WINDOW", False);
	walk(d, DefaultRootWindow(d), wm_protocols, wm_delete, 0);
	XSync(d, False);
	XCloseDisplay(d);
	printf("xclose: asked %d window(s) to close\n", asked);
	return asked ? 0 : 1;
}
