#!/bin/sh
# Answers one HTTP request on stdin/stdout: `/` says hello to the world, `/hello/<name>`
# greets <name> with a random quote of the day.
read -r method path _
while read -r line; do
  [ "$(printf '%s' "$line" | tr -d '\r')" = "" ] && break
done
name=${path#/hello/}
if [ "$path" = "/" ]; then
  body="Hello, World! Visit /hello/<your name> for a quote of the day."
elif [ "$name" != "$path" ] && [ -n "$name" ]; then
  quote=$(shuf -n 1 /app/quotes.txt)
  body="Hello, $name! Your quote of the day: $quote"
else
  printf 'HTTP/1.0 404 Not Found\r\nContent-Type: text/plain\r\n\r\nnot found\n'
  exit 0
fi
printf 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n%s\n' "$body"
