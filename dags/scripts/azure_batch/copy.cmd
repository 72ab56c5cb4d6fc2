@echo off
REM The AML notebook's Windows executable: copy the input file into the output folder.
REM Usage: copy.cmd <input file> <output folder>
echo copying %1 to %2
copy %1 %2
