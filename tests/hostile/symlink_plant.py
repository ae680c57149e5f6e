# Plants symlinks to host paths in its working directory and /tmp (and, where
# it can, swaps its working directory for a symlink), hoping that the cleanup
# after the run follows them. The host paths must be untouched afterwards.
import os

CANARY_DIR = "@CANARY_DIR@"
CANARY_FILE = "@CANARY_FILE@"
TOKEN = "@TOKEN@"
cwd = os.getcwd()
print("INFO: working directory %s" % cwd, flush=True)


def plant(target, link):
    try:
        os.symlink(target, link)
        print("INFO: %s -> %s" % (link, target), flush=True)
    except OSError as e:
        print("INFO: cannot plant %s: %s" % (link, e.strerror), flush=True)


for name, target in (("canary_dir", CANARY_DIR), ("canary_file", CANARY_FILE), ("root", "/root"),
                     ("slash", "/"), ("loop", "loop")):
    plant(target, os.path.join(cwd, name))
os.makedirs(os.path.join(cwd, "deep", "er"))
plant(CANARY_DIR, os.path.join(cwd, "deep", "er", "link"))
plant(CANARY_FILE, os.path.join(cwd, "deep", "file"))
with open(os.path.join(cwd, "deep", "er", "plain"), "w") as f:
    f.write("x")
plant(CANARY_DIR, "/tmp/agentbayfs-canary-" + TOKEN)
try:
    os.rename(cwd, cwd + ".moved")
    plant(CANARY_DIR, cwd)
    print("INFO: the working directory is now a symlink", flush=True)
except OSError as e:
    print("INFO: cannot swap the working directory: %s" % e.strerror, flush=True)
print("INFO: canary visible from here: %s" % os.path.exists(CANARY_FILE), flush=True)
print("DONE symlink_plant")
