# The Images guide (openai 0.28), "Error handling", as written: on success it names `response`,
# which the guide never assigns; its point is the except branch.
import json
import os

import openai

openai.api_key = os.getenv("OPENAI_API_KEY")  # openai 0.28 reads OPENAI_API_BASE by itself

try:
  openai.Image.create_variation(
    open(os.getenv("IMAGE", "image.png"), "rb"),
    n=1,
    size="1024x1024"
  )
  print(response['data'][0]['url'])
except openai.error.OpenAIError as e:
  print(json.dumps({"http_status": e.http_status, "error": e.error, "class": type(e).__name__}))
