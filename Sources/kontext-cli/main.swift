import KontextCLI

await Kontext.runCommandLine()
