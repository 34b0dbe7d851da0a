// The Images guide (openai-node 3.x), "Edits", as the guide writes the call: image, mask, prompt.
// openai-node 3.2 and later take (image, prompt, mask, ...), so this call sends the mask file as the
// prompt and the prompt text as the mask.
const fs = require("fs");
const { Configuration, OpenAIApi } = require("openai");
const configuration = new Configuration({
  apiKey: process.env.OPENAI_API_KEY,
  basePath: process.env.OPENAI_BASE_URL,
});
const openai = new OpenAIApi(configuration);

async function main() {
  try {
    const response = await openai.createImageEdit(
      fs.createReadStream(process.env.IMAGE || "sunlit_lounge.png"),
      fs.createReadStream(process.env.MASK || "mask.png"),
      "A sunlit indoor lounge area with a pool containing a flamingo",
      1,
      "1024x1024"
    );
    image_url = response.data.data[0].url;
    console.log(JSON.stringify({ image_url, urls: response.data.data.map((image) => image.url), request_id: response.headers["x-request-id"] }));
  } catch (error) {
    if (error.response) {
      console.log(JSON.stringify({ status: error.response.status, data: error.response.data, request_id: error.response.headers["x-request-id"] }));
    } else {
      console.log(JSON.stringify({ message: error.message }));
    }
  }
}

main();
