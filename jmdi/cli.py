def main():
    raise SystemExit("jmdi: not built yet")
